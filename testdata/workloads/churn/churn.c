/*
 * churn: process-churn generator for benchmarks. Starts -rate short-lived
 * processes per second (fork + exec of -cmd, /bin/true by default) for
 * -duration (default: until killed), so a profiler's per-process costs
 * (exec/exit tracking, /proc reads, symbol loading) can be measured.
 *
 * Build: gcc -O1 -fno-omit-frame-pointer -g -I../common churn.c
 * Usage: churn [-rate N] [-duration D] [-cmd PATH]
 *
 * Prints "ready <pid>" before the first spawn and, at exit,
 * "spawned N reaped M late L" (L: ticks that fell behind schedule, which
 * means the machine could not sustain the rate).
 */
#include <fcntl.h>
#include <sys/wait.h>

#include "workload.h"

static const char *cmd = "/bin/true";

__attribute__((noinline)) static int spawn_one(int devnull)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Children must not hold the test's stdout pipe open. */
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execl(cmd, cmd, (char *)NULL);
		_exit(127);
	}
	return 0;
}

static long reap(int block)
{
	long n = 0;
	for (;;) {
		pid_t p = waitpid(-1, NULL, block ? 0 : WNOHANG);
		if (p <= 0)
			return n;
		n++;
	}
}

int main(int argc, char **argv)
{
	double duration = 0;
	long rate = 100;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if ((v = wl_flag(argc, argv, &i, "duration")))
			duration = wl_parse_seconds(argv[0], v);
		else if ((v = wl_flag(argc, argv, &i, "rate")))
			rate = wl_parse_long(argv[0], v);
		else if ((v = wl_flag(argc, argv, &i, "cmd")))
			cmd = v;
		else if (argv[i][0] != '-')
			duration = wl_parse_seconds(argv[0], argv[i]);
		else
			wl_die(argv[0], "usage: churn [-rate N] [-duration D] [-cmd PATH]", NULL);
	}
	if (rate <= 0 || rate > 100000)
		wl_die(argv[0], "-rate must be in 1..100000", NULL);
	int devnull = open("/dev/null", O_RDWR);
	if (devnull < 0) {
		perror("open /dev/null");
		return 1;
	}
	wl_install_stop_handlers();
	wl_stop_after(duration);
	wl_ready();

	/* Absolute deadlines so the rate does not drift with spawn cost. */
	const int64_t period = 1000000000LL / rate;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	long spawned = 0, reaped = 0, late = 0;
	while (!wl_stop) {
		if (spawn_one(devnull) == 0)
			spawned++;
		reaped += reap(0);
		next.tv_nsec += period;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec)) {
			/* Behind schedule: skip ahead instead of bursting to catch up. */
			late++;
			next = now;
			continue;
		}
		while (!wl_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	reaped += reap(1);
	printf("spawned %ld reaped %ld late %ld\n", spawned, reaped, late);
	fflush(stdout);
	return 0;
}
