/*
 * pingpong: context-switch generator for benchmarks. Two threads hand a
 * byte back and forth through two pipes, paced so that the process makes
 * -rate context switches per second (the pacer's sleeps included), for
 * -duration (default: until killed). It loads a profiler's off-CPU
 * tracing (sched_switch) at a known, steady rate.
 *
 * Build: gcc -O1 -fno-omit-frame-pointer -g -pthread -I../common pingpong.c
 * Usage: pingpong [-rate N] [-tick D] [-duration D]
 *
 * Every -tick (default 1ms, on an absolute schedule) the pinger sleeps once
 * and then does as many round trips as the rate owes: a round trip is two
 * switches (the pinger blocks reading the reply, or is preempted by the
 * ponger it woke; the ponger blocks reading the next ball), the sleep one
 * more. Ticks that fall behind are skipped, not bursted, and counted. The
 * node sees more switches than the process (idle-task switches when the
 * threads run on different CPUs): measure both, e.g. the threads'
 * voluntary + nonvoluntary_ctxt_switches and /proc/stat ctxt.
 *
 * Prints "ready <pid>" before the first tick and, at exit (also on
 * SIGTERM), "round_trips N ticks T late L".
 */
#include <pthread.h>

#include "workload.h"

static int ball[2];  /* pinger -> ponger */
static int reply[2]; /* ponger -> pinger */

/* ponger returns each ball until the pinger closes its end. */
static void *ponger(void *arg)
{
	char c;
	(void)arg;
	for (;;) {
		ssize_t n = read(ball[0], &c, 1);
		if (n == 0)
			return NULL;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		while (write(reply[1], &c, 1) < 0 && errno == EINTR)
			;
	}
}

/* round_trip sends one ball and waits for it to come back. */
__attribute__((noinline)) static int round_trip(void)
{
	char c = 'x';
	while (write(ball[1], &c, 1) < 0)
		if (errno != EINTR)
			return -1;
	for (;;) {
		ssize_t n = read(reply[0], &c, 1);
		if (n == 1)
			return 0;
		if (n == 0 || errno != EINTR)
			return -1;
	}
}

static void add_ns(struct timespec *t, int64_t ns)
{
	t->tv_nsec += ns;
	while (t->tv_nsec >= 1000000000L) {
		t->tv_nsec -= 1000000000L;
		t->tv_sec++;
	}
}

static int before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int main(int argc, char **argv)
{
	double duration = 0, tick = 0.001;
	long rate = 2000;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if ((v = wl_flag(argc, argv, &i, "duration")))
			duration = wl_parse_seconds(argv[0], v);
		else if ((v = wl_flag(argc, argv, &i, "rate")))
			rate = wl_parse_long(argv[0], v);
		else if ((v = wl_flag(argc, argv, &i, "tick")))
			tick = wl_parse_seconds(argv[0], v);
		else
			wl_die(argv[0], "usage: pingpong [-rate N] [-tick D] [-duration D]", NULL);
	}
	if (rate <= 0 || rate > 1000000)
		wl_die(argv[0], "-rate must be in 1..1000000", NULL);
	if (tick < 1e-4 || tick > 1)
		wl_die(argv[0], "-tick must be in 100us..1s", NULL);
	/* A tick owes at least its own sleep plus one round trip. */
	if (rate * tick < 3)
		tick = 3.0 / (double)rate;
	/* Round trips per tick, as a fraction: (switches per tick - 1 sleep) / 2. */
	const double per_tick = ((double)rate * tick - 1) / 2;
	const int64_t period = (int64_t)(tick * 1e9);

	if (pipe(ball) < 0 || pipe(reply) < 0) {
		perror("pipe");
		return 1;
	}
	/* Signals go to the pinger (this thread), which polls the stop flag. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_t pong;
	if (pthread_create(&pong, NULL, ponger, NULL) != 0) {
		perror("pthread_create");
		return 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	wl_install_stop_handlers();
	wl_stop_after(duration);
	wl_ready();

	struct timespec next, now;
	clock_gettime(CLOCK_MONOTONIC, &next);
	long trips = 0, ticks = 0, late = 0;
	double owed = 0;
	while (!wl_stop) {
		add_ns(&next, period);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (before(&next, &now)) {
			late++; /* behind schedule: skip ahead instead of bursting */
			next = now;
		} else {
			while (!wl_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
				;
		}
		ticks++;
		for (owed += per_tick; owed >= 1 && !wl_stop; owed--) {
			if (round_trip() < 0) {
				perror("pingpong: round trip");
				return 1;
			}
			trips++;
		}
	}
	close(ball[1]);
	pthread_join(pong, NULL);
	printf("round_trips %ld ticks %ld late %ld\n", trips, ticks, late);
	fflush(stdout);
	return 0;
}
