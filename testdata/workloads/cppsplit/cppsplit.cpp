// cppsplit: C++ ground truth whose burners have mangled names, for testing
// demangling. Burns in Burner::burnA/burnB/burnC at -split (default
// 60,30,10), driven by the function template spin<unsigned long>.
//
// Build: g++ -O1 -fno-omit-frame-pointer -g -I../common cppsplit.cpp
// Usage: cppsplit [-duration D] [-split a,b,c] [D]
//
// As `nm -C` (and so a profiler) should print them:
//   flightrec_test::Burner::burnA(int)
//   flightrec_test::Burner::burnB(int)
//   flightrec_test::Burner::burnC(int)
//   unsigned long flightrec_test::spin<unsigned long>(unsigned long)
#include "workload.h"

volatile uint64_t sink;

namespace flightrec_test {

// Inlined into the burners: DWARF-aware profilers can show it as an inlined
// frame (flightrec_test::mix<unsigned long>), but it has no symbol of its own.
template <typename T>
inline __attribute__((always_inline)) T mix(T x, T k)
{
	WL_MIX(x, k);
	return x;
}

struct Burner {
	uint64_t state = 1;
	uint64_t done = 0;

	void burnA(int units);
	void burnB(int units);
	void burnC(int units);

	// Called once per burner call so the burners are not leaves: GCC gives
	// leaf functions that need no stack no frame pointer even with
	// -fno-omit-frame-pointer, and frame-pointer unwinding from a frameless
	// function skips its caller.
	void unitDone(uint64_t x);
};

// Identical loop shapes with different constants: equal cost per unit.

__attribute__((noinline)) void Burner::unitDone(uint64_t x)
{
	state = x;
	done++;
	sink = done;
}

__attribute__((noinline)) void Burner::burnA(int units)
{
	uint64_t x = state;
	long n = (long)units * WL_UNIT_ITERS;
	for (long i = 0; i < n; i++)
		x = mix<uint64_t>(x, 0x9E3779B97F4A7C15ULL);
	unitDone(x);
}

__attribute__((noinline)) void Burner::burnB(int units)
{
	uint64_t x = state;
	long n = (long)units * WL_UNIT_ITERS;
	for (long i = 0; i < n; i++)
		x = mix<uint64_t>(x, 0xBF58476D1CE4E5B9ULL);
	unitDone(x);
}

__attribute__((noinline)) void Burner::burnC(int units)
{
	uint64_t x = state;
	long n = (long)units * WL_UNIT_ITERS;
	for (long i = 0; i < n; i++)
		x = mix<uint64_t>(x, 0x94D049BB133111EBULL);
	unitDone(x);
}

// The split is specified in weights set before spin runs; spin is the
// common caller of the burners, so it is on (nearly) every stack.
static int weights[3] = {6, 3, 1};

// A function template so the profile contains a demangled name with a
// return type and template arguments. Runs until wl_stop is raised and
// returns the number of cycles run.
template <typename T>
__attribute__((noinline)) T spin(T seed)
{
	unsigned char slots[3000];
	int n = wl_slots(weights, slots, (int)sizeof(slots));
	uint64_t rng = 0x2545F4914F6CDD1DULL ^ (uint64_t)seed;
	Burner b;
	T cycles = 0;
	while (!wl_stop) {
		wl_shuffle(slots, n, &rng);
		for (int i = 0; i < n; i++) {
			switch (slots[i]) {
			case 0:
				b.burnA(1);
				break;
			case 1:
				b.burnB(1);
				break;
			default:
				b.burnC(1);
				break;
			}
		}
		cycles++;
	}
	return cycles;
}

// Round-robin so drift or a noisy neighbour hits all burners alike.
static void calibrate(int rounds)
{
	static void (Burner::*const burners[3])(int) = {&Burner::burnA, &Burner::burnB, &Burner::burnC};
	static const char *const names[3] = {
		"flightrec_test::Burner::burnA(int)",
		"flightrec_test::Burner::burnB(int)",
		"flightrec_test::Burner::burnC(int)",
	};
	int64_t total[3] = {0, 0, 0};
	Burner b;
	for (int f = 0; f < 3; f++)
		(b.*burners[f])(WL_CALIB_UNITS);
	for (int r = 0; r < rounds; r++) {
		for (int f = 0; f < 3; f++) {
			int64_t t0 = wl_thread_cpu_ns();
			(b.*burners[f])(WL_CALIB_UNITS);
			total[f] += wl_thread_cpu_ns() - t0;
		}
	}
	for (int f = 0; f < 3; f++) {
		long units = (long)rounds * WL_CALIB_UNITS;
		printf("calib %s %.1f %ld\n", names[f], (double)total[f] / (double)units, units);
	}
}

} // namespace flightrec_test

int main(int argc, char **argv)
{
	double duration = 0;
	long calib = 0;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if ((v = wl_flag(argc, argv, &i, "duration")))
			duration = wl_parse_seconds(argv[0], v);
		else if ((v = wl_flag(argc, argv, &i, "split")))
			wl_parse_split(argv[0], v, flightrec_test::weights);
		else if ((v = wl_flag(argc, argv, &i, "calibrate")))
			calib = wl_parse_long(argv[0], v);
		else if (argv[i][0] != '-')
			duration = wl_parse_seconds(argv[0], argv[i]);
		else
			wl_die(argv[0], "usage: cppsplit [-duration D] [-split a,b,c] [D]", NULL);
	}
	if (calib > 0) {
		flightrec_test::calibrate((int)calib);
		return 0;
	}
	wl_install_stop_handlers();
	wl_stop_after(duration);
	wl_ready();
	sink = flightrec_test::spin<unsigned long>(1);
	return 0;
}
