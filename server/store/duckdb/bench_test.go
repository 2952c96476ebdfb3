package duckdb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

// benchFleet makes agent-like profiles: a universe of stacks over a few
// thousand frames, each profile drawing ~300 of them.
type benchFleet struct {
	frames []model.Frame
	stacks [][]int32
}

func newBenchFleet() *benchFleet {
	rng := rand.New(rand.NewPCG(1, 2))
	f := &benchFleet{}
	for i := 0; i < 3000; i++ {
		f.frames = append(f.frames, model.Frame{Function: fmt.Sprintf("github.com/acme/svc/pkg%d.(*T).Method%d", i%50, i), File: fmt.Sprintf("/src/pkg%d/file%d.go", i%50, i%13), Line: int64(i % 400), Mapping: "/srv/app", BuildID: "abcdef0123456789"})
	}
	for i := 0; i < 20000; i++ {
		st := make([]int32, 10+rng.IntN(50))
		for j := range st {
			st[j] = int32(rng.IntN(len(f.frames)))
		}
		f.stacks = append(f.stacks, st)
	}
	return f
}

func (f *benchFleet) profile(rng *rand.Rand, node int, at time.Time) *model.Profile {
	p := &model.Profile{Type: model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds"}, Scale: 10101010, Time: at, Duration: 10 * time.Second,
		Labels: labels.FromStrings("node", fmt.Sprintf("n%d", node), "service", "api", "pid", fmt.Sprint(1000+node))}
	p.Stacks.Frames = f.frames
	for i := 0; i < 300; i++ {
		p.Stacks.Stacks = append(p.Stacks.Stacks, f.stacks[int(rng.ExpFloat64()*2000)%len(f.stacks)])
		p.Stacks.Values = append(p.Stacks.Values, 1+int64(rng.IntN(5)))
	}
	return p
}

// BenchmarkAppend measures Append of two-profile batches from 8 clients,
// the shape of the agent's requests, in steady state (dictionaries warm).
func BenchmarkAppend(b *testing.B) {
	threads := 2
	if v := os.Getenv("BENCH_THREADS"); v != "" {
		threads, _ = strconv.Atoi(v)
	}
	s, err := Open(b.TempDir(), Options{Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	f := newBenchFleet()
	base := time.Now().Add(-time.Hour).Truncate(time.Hour)
	warm := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 200; n++ { // intern the universe once
		s.Append(context.Background(), &model.Batch{Profiles: []*model.Profile{f.profile(warm, n, base)}})
	}
	var seq atomic.Int64
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/8 + 1
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 9))
			for i := 0; i < per; i++ {
				n := int(seq.Add(1))
				at := base.Add(time.Duration(n/1000) * 10 * time.Second)
				batch := &model.Batch{Profiles: []*model.Profile{f.profile(rng, n%1000, at), f.profile(rng, n%1000+1000, at)}}
				if err := s.Append(context.Background(), batch); err != nil {
					b.Error(err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*2)/b.Elapsed().Seconds(), "profiles/s")
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/batch")
	b.ReportMetric(float64(s.w.committed.Load())/float64(s.w.commits.Load()), "batches/commit")
}

// processCPU is this process's user+system CPU time: DuckDB's own threads
// included, which Go's CPU profiles do not see.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
