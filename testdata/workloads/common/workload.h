/*
 * Shared plumbing for the C and C++ ground-truth workloads: flag parsing,
 * the "ready <pid>" handshake, a stop flag raised by a timer or SIGTERM, and
 * a thread CPU clock for calibration.
 *
 * Everything here is static inline and tiny on purpose: none of it may show
 * up in a profile next to the functions whose shares the tests assert.
 */
#ifndef FLIGHTREC_WORKLOAD_H
#define FLIGHTREC_WORKLOAD_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Polled between units of work, never inside a burn loop. */
static volatile sig_atomic_t wl_stop;

static inline void wl_on_signal(int sig)
{
	(void)sig;
	wl_stop = 1;
}

/*
 * SIGTERM/SIGINT end the run gracefully so workloads that print a summary at
 * exit (kernelheavy's rusage) still do when a test stops them.
 */
static inline void wl_install_stop_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wl_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/*
 * A one-shot interval timer rather than reading the clock in the loop: the
 * proportions must come from work, and clock reads would add vDSO samples.
 */
static inline void wl_stop_after(double seconds)
{
	struct itimerval it;
	if (seconds <= 0)
		return;
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)seconds;
	it.it_value.tv_usec = (suseconds_t)((seconds - (double)it.it_value.tv_sec) * 1e6);
	if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
		it.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &it, NULL);
}

static inline void wl_ready(void)
{
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
}

static inline void wl_die(const char *prog, const char *msg, const char *arg)
{
	fprintf(stderr, "%s: %s%s%s\n", prog, msg, arg ? ": " : "", arg ? arg : "");
	exit(2);
}

/*
 * Go-style durations ("250ms", "10s", "1m") so callers can pass the same
 * -duration to Go and C workloads; a bare number means seconds.
 */
static inline double wl_parse_seconds(const char *prog, const char *s)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v < 0)
		wl_die(prog, "bad duration", s);
	if (*end == '\0' || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "ms") == 0)
		return v / 1e3;
	if (strcmp(end, "us") == 0 || strcmp(end, "µs") == 0)
		return v / 1e6;
	if (strcmp(end, "m") == 0)
		return v * 60;
	if (strcmp(end, "h") == 0)
		return v * 3600;
	wl_die(prog, "bad duration", s);
	return 0;
}

/*
 * Matches argv[*i] against -name, --name, -name=V or --name=V. Returns the
 * value (consuming the next argument when it is separate) or NULL.
 */
static inline const char *wl_flag(int argc, char **argv, int *i, const char *name)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (a[0] != '-')
		return NULL;
	a++;
	if (a[0] == '-')
		a++;
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc)
		wl_die(argv[0], "flag needs a value", argv[*i]);
	(*i)++;
	return argv[*i];
}

static inline long wl_parse_long(const char *prog, const char *s)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		wl_die(prog, "bad number", s);
	return v;
}

static inline int64_t wl_thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline uint64_t wl_xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/*
 * The burn step shared by every split workload (Go's main.mix is the same
 * arithmetic): a serial dependency chain, so one iteration costs the same
 * wherever it runs and a unit's cost depends only on its iteration count.
 */
#define WL_MIX(x, k)              \
	do {                      \
		(x) ^= (x) << 13; \
		(x) ^= (x) >> 7;  \
		(x) ^= (x) << 17; \
		(x) *= (k);       \
		(x) ^= (x) >> 29; \
		(x) ^= (x) << 11; \
		(x) += (k);       \
	} while (0)

/* Iterations per unit: ~30 µs on current x86-64, far below a sample period. */
#define WL_UNIT_ITERS 8192

/* Units per timed call in -calibrate mode, large enough to dwarf clock cost. */
#define WL_CALIB_UNITS 16

/*
 * Parses "-split a,b,c" into weights reduced by their gcd, which keeps a
 * cycle (and so the interleaving period) as short as possible.
 */
static inline void wl_parse_split(const char *prog, const char *s, int w[3])
{
	long v[3];
	int g, i;
	char *end;
	const char *p = s;
	for (i = 0; i < 3; i++) {
		errno = 0;
		v[i] = strtol(p, &end, 10);
		if (errno != 0 || end == p || v[i] < 0 || v[i] > 1000)
			wl_die(prog, "bad -split", s);
		if (i < 2 && *end != ',')
			wl_die(prog, "-split wants a,b,c", s);
		p = end + 1;
	}
	if (*end != '\0')
		wl_die(prog, "-split wants a,b,c", s);
	g = 0;
	for (i = 0; i < 3; i++) {
		int a = g, b = (int)v[i];
		while (b != 0) {
			int t = a % b;
			a = b;
			b = t;
		}
		g = a;
	}
	if (g == 0)
		wl_die(prog, "-split: all weights are zero", s);
	for (i = 0; i < 3; i++)
		w[i] = (int)v[i] / g;
}

/*
 * Builds the per-cycle slot list for a split: w[0] zeros, w[1] ones, w[2]
 * twos. The caller shuffles it every cycle with wl_shuffle.
 */
static inline int wl_slots(const int w[3], unsigned char *slots, int max)
{
	int n = 0, f, j;
	for (f = 0; f < 3; f++)
		for (j = 0; j < w[f] && n < max; j++)
			slots[n++] = (unsigned char)f;
	return n;
}

/* Fisher-Yates, so no fixed phase relation exists between cycle and sampler. */
static inline void wl_shuffle(unsigned char *slots, int n, uint64_t *rng)
{
	int i;
	for (i = n - 1; i > 0; i--) {
		int j = (int)(wl_xorshift(rng) % (uint64_t)(i + 1));
		unsigned char t = slots[i];
		slots[i] = slots[j];
		slots[j] = t;
	}
}

#endif
