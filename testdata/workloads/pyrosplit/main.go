// Command pyrosplit is a ground-truth workload for the server's tests: it
// burns CPU in main.cpuA, main.cpuB and main.cpuC at 60/30/10 and pushes its
// profiles with the real pyroscope-go client. Two thirds of its cycles run
// under the pprof label tenant=a, one third under tenant=b.
//
// It prints "ready <pid>" once burning has begun, runs until -duration
// elapses or SIGTERM, then stops the client, which uploads what is pending.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/grafana/pyroscope-go"
)

// unitIters matches gosplit: ~30 µs per unit, far shorter than the 10 ms
// period of Go's CPU profiler.
const unitIters = 8192

var sink uint64

func mix(x, k uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	x *= k
	return x + k
}

//go:noinline
func cpuA(x uint64) uint64 { return burn(x, 0x9E3779B97F4A7C15) }

//go:noinline
func cpuB(x uint64) uint64 { return burn(x, 0xBF58476D1CE4E5B9) }

//go:noinline
func cpuC(x uint64) uint64 { return burn(x, 0x94D049BB133111EB) }

//go:noinline
func burn(x, k uint64) uint64 {
	for i := 0; i < unitIters; i++ {
		x = mix(x, k)
	}
	return x
}

// cycle runs 6 units of cpuA, 3 of cpuB and 1 of cpuC in a shuffled order.
func cycle(rng *uint64, x uint64) uint64 {
	slots := [10]uint8{0, 0, 0, 0, 0, 0, 1, 1, 1, 2}
	for i := len(slots) - 1; i > 0; i-- {
		*rng ^= *rng << 13
		*rng ^= *rng >> 7
		*rng ^= *rng << 17
		j := int(*rng % uint64(i+1))
		slots[i], slots[j] = slots[j], slots[i]
	}
	for _, s := range slots {
		switch s {
		case 0:
			x = cpuA(x)
		case 1:
			x = cpuB(x)
		default:
			x = cpuC(x)
		}
	}
	return x
}

func main() {
	server := flag.String("server", "http://127.0.0.1:7070", "server to push to")
	app := flag.String("app", "pyrosplit", "application name")
	tags := flag.String("tags", "", "k=v,k=v tags")
	duration := flag.Duration("duration", 0, "run this long (0: until SIGTERM)")
	upload := flag.Duration("upload", 2*time.Second, "upload period")
	flag.Parse()

	t := map[string]string{}
	for _, kv := range strings.Split(*tags, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			t[k] = v
		}
	}
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: *app,
		ServerAddress:   *server,
		Tags:            t,
		UploadRate:      *upload,
		ProfileTypes:    []pyroscope.ProfileType{pyroscope.ProfileCPU},
		Logger:          pyroscope.StandardLogger,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pyroscope:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	if *duration > 0 {
		ctx, stop = context.WithTimeout(ctx, *duration)
	}
	defer stop()

	runtime.LockOSThread()
	fmt.Printf("ready %d\n", os.Getpid())
	rng, x := uint64(0x2545F4914F6CDD1D), uint64(1)
	for n := 0; ctx.Err() == nil; n++ {
		tenant := "a"
		if n%3 == 2 {
			tenant = "b"
		}
		pyroscope.TagWrapper(ctx, pyroscope.Labels("tenant", tenant), func(context.Context) {
			for i := 0; i < 20; i++ {
				x = cycle(&rng, x)
			}
		})
	}
	sink = x
	if err := p.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pyroscope stop:", err)
	}
}
