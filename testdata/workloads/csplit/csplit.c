/*
 * csplit: single-threaded C ground truth. Burns in cpu_a, cpu_b and cpu_c in
 * the ratio of -split (default 60,30,10), set by work amounts only.
 *
 * Build: gcc -O1 -fno-omit-frame-pointer -g -I../common csplit.c
 * Usage: csplit [-duration D] [-split a,b,c] [D]
 */
#include "workload.h"

volatile uint64_t sink;

/*
 * Inlined into every burner so DWARF-aware profilers can show an inlined
 * "mix" frame; the loops spend nearly all their time in its body.
 */
static inline __attribute__((always_inline)) uint64_t mix(uint64_t x, uint64_t k)
{
	WL_MIX(x, k);
	return x;
}

/*
 * Called once per burner call. Its real job is to make the burners non-leaf:
 * GCC sets up no frame pointer in a leaf that needs no stack, even with
 * -fno-omit-frame-pointer, and frame-pointer unwinding from a frameless
 * function skips its caller (burn_split).
 */
__attribute__((noinline)) uint64_t unit_done(uint64_t x)
{
	sink ^= x;
	return x;
}

/*
 * Identical loop shapes with different constants: equal cost per unit, and
 * nothing for a linker or compiler to fold together.
 */
__attribute__((noinline)) uint64_t cpu_a(int units, uint64_t x)
{
	long n = (long)units * WL_UNIT_ITERS;
	for (long i = 0; i < n; i++)
		x = mix(x, 0x9E3779B97F4A7C15ULL);
	return unit_done(x);
}

__attribute__((noinline)) uint64_t cpu_b(int units, uint64_t x)
{
	long n = (long)units * WL_UNIT_ITERS;
	for (long i = 0; i < n; i++)
		x = mix(x, 0xBF58476D1CE4E5B9ULL);
	return unit_done(x);
}

__attribute__((noinline)) uint64_t cpu_c(int units, uint64_t x)
{
	long n = (long)units * WL_UNIT_ITERS;
	for (long i = 0; i < n; i++)
		x = mix(x, 0x94D049BB133111EBULL);
	return unit_done(x);
}

typedef uint64_t (*burner)(int, uint64_t);

static const burner burners[3] = {cpu_a, cpu_b, cpu_c};
static const char *const names[3] = {"cpu_a", "cpu_b", "cpu_c"};

__attribute__((noinline)) uint64_t burn_split(const int w[3])
{
	unsigned char slots[3000];
	int n = wl_slots(w, slots, (int)sizeof(slots));
	uint64_t rng = 0x2545F4914F6CDD1DULL, x = 1;
	while (!wl_stop) {
		wl_shuffle(slots, n, &rng);
		for (int i = 0; i < n; i++) {
			/* Direct calls keep the call sites (and stacks) simple. */
			switch (slots[i]) {
			case 0:
				x = cpu_a(1, x);
				break;
			case 1:
				x = cpu_b(1, x);
				break;
			default:
				x = cpu_c(1, x);
				break;
			}
		}
	}
	return x;
}

/*
 * Round-robin over the burners so drift or a noisy neighbour hits all three
 * alike; prints CPU ns per unit for the test to turn into shares.
 */
static void calibrate(int rounds)
{
	int64_t total[3] = {0, 0, 0};
	uint64_t x = 1;
	for (int f = 0; f < 3; f++)
		x = burners[f](WL_CALIB_UNITS, x);
	for (int r = 0; r < rounds; r++) {
		for (int f = 0; f < 3; f++) {
			int64_t t0 = wl_thread_cpu_ns();
			x = burners[f](WL_CALIB_UNITS, x);
			total[f] += wl_thread_cpu_ns() - t0;
		}
	}
	sink = x;
	for (int f = 0; f < 3; f++) {
		long units = (long)rounds * WL_CALIB_UNITS;
		printf("calib %s %.1f %ld\n", names[f], (double)total[f] / (double)units, units);
	}
}

int main(int argc, char **argv)
{
	double duration = 0;
	int w[3] = {6, 3, 1};
	long calib = 0;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if ((v = wl_flag(argc, argv, &i, "duration")))
			duration = wl_parse_seconds(argv[0], v);
		else if ((v = wl_flag(argc, argv, &i, "split")))
			wl_parse_split(argv[0], v, w);
		else if ((v = wl_flag(argc, argv, &i, "calibrate")))
			calib = wl_parse_long(argv[0], v);
		else if (argv[i][0] != '-')
			duration = wl_parse_seconds(argv[0], argv[i]);
		else
			wl_die(argv[0], "usage: csplit [-duration D] [-split a,b,c] [D]", NULL);
	}
	if (calib > 0) {
		calibrate((int)calib);
		return 0;
	}
	wl_install_stop_handlers();
	wl_stop_after(duration);
	wl_ready();
	sink = burn_split(w);
	return 0;
}
