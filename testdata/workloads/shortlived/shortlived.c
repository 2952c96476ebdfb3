/*
 * shortlived: a process that burns a fixed amount of CPU in short_burn and
 * exits 0, for testing that a profiler catches (and symbolizes) processes
 * that are gone before it gets round to reading /proc/<pid>.
 *
 * Build: gcc -O1 -fno-omit-frame-pointer -g -I../common shortlived.c
 * Usage: shortlived [-burn D]   (default 200ms of thread CPU time)
 */
#include "workload.h"

volatile uint64_t sink;

/*
 * Iterations between clock reads, about 1 ms of work: the clock is read
 * ~200 times per run, too rarely for its cost to show in a profile, often
 * enough that the overshoot is at most ~1 ms.
 */
#define CHUNK_ITERS (32 * WL_UNIT_ITERS)

/*
 * Burns until the thread has used burn_ns of CPU time. CPU time, not wall
 * time, so the number of samples a profiler should see (burn x frequency)
 * does not depend on how busy the machine is.
 */
__attribute__((noinline)) uint64_t short_burn(int64_t burn_ns)
{
	uint64_t x = 1;
	int64_t end = wl_thread_cpu_ns() + burn_ns;
	do {
		for (long i = 0; i < CHUNK_ITERS; i++)
			WL_MIX(x, 0x9E3779B97F4A7C15ULL);
	} while (wl_thread_cpu_ns() < end);
	return x;
}

int main(int argc, char **argv)
{
	double burn = 0.2;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if ((v = wl_flag(argc, argv, &i, "burn")))
			burn = wl_parse_seconds(argv[0], v);
		else
			wl_die(argv[0], "usage: shortlived [-burn D]", NULL);
	}
	wl_ready();
	sink = short_burn((int64_t)(burn * 1e9));
	return 0;
}
