package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store/duckdb"
)

// fleet is the benchmark's code: one frame per function, and a universe
// of stacks made by random walks down a call graph (each function calls 6
// others, the first ones most often), so that upper frames are shared as
// in real programs. Stack k ends in function k mod functions: every
// function is some stack's leaf.
type fleet struct {
	frames []model.Frame
	stacks [][]int32 // leaf first
	slow   int32     // the function the canary spends 2 more points in
}

const (
	stacksPerFunction = 3
	entries           = 20 // functions stacks start in
	fanOut            = 6
	period            = 10_000_000 // 10 ms a sample, in nanoseconds
	slowShare         = 0.02
)

func newFleet(functions int) *fleet {
	rng := rand.New(rand.NewPCG(1, 1))
	f := &fleet{slow: int32(functions / 3)}
	callees := make([][]int32, functions)
	for i := range functions {
		f.frames = append(f.frames, model.Frame{
			Function: fmt.Sprintf("github.com/acme/api/pkg%03d.(*T%d).Method%d", i%500, i%37, i),
			File:     fmt.Sprintf("/src/pkg%03d/file%d.go", i%500, i%17), Line: int64(10 + i%300),
			Mapping: "/srv/api", BuildID: "0123456789abcdef",
		})
		for range fanOut {
			callees[i] = append(callees[i], int32(rng.IntN(functions)))
		}
	}
	for k := range functions * stacksPerFunction {
		depth := 8 + rng.IntN(23)
		path := []int32{int32(rng.IntN(entries))}
		for len(path) < depth-1 {
			next := callees[path[len(path)-1]]
			path = append(path, next[min(int(rng.ExpFloat64()*1.5), fanOut-1)])
		}
		path = append(path, int32(k%functions))
		// Leaf first: reverse the root-to-leaf walk.
		for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
			path[i], path[j] = path[j], path[i]
		}
		f.stacks = append(f.stacks, path)
	}
	return f
}

func (f *fleet) slowName() string { return f.frames[f.slow].Function }

// profile draws n distinct stacks, popular ones more often, with 1 to 20
// samples each; a canary profile adds slowShare of its total to a stack
// ending in the slow function.
func (f *fleet) profile(rng *rand.Rand, n int, canary bool) model.StackSet {
	set := model.StackSet{Frames: f.frames}
	index := map[int]int{}
	var total int64
	for len(set.Stacks) < n {
		k := int(rng.ExpFloat64()*float64(len(f.stacks))/8) % len(f.stacks)
		if _, dup := index[k]; dup {
			continue
		}
		index[k] = len(set.Stacks)
		v := int64(1 + rng.IntN(20))
		set.Stacks = append(set.Stacks, f.stacks[k])
		set.Values = append(set.Values, v)
		total += v
	}
	if canary {
		extra := int64(float64(total) * slowShare / (1 - slowShare))
		if i, ok := index[int(f.slow)]; ok {
			set.Values[i] += extra
		} else {
			set.Stacks = append(set.Stacks, f.stacks[f.slow])
			set.Values = append(set.Values, extra)
		}
	}
	return set
}

// load appends every instance's profiles, an instance a batch, and
// returns how many stack values it stored.
func (f *fleet) load(ctx context.Context, st *duckdb.Store, hour time.Time, o options) (int, error) {
	cpu := model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	rng := rand.New(rand.NewPCG(2, 2))
	var values int
	for _, track := range []string{"baseline", "canary"} {
		for i := range o.instances {
			ls := labels.FromStrings("service", "api", "track", track, "pod", fmt.Sprintf("api-%s-%d", track, i),
				"node", fmt.Sprintf("node-%d", i%40), "pid", fmt.Sprint(1000+i))
			var b model.Batch
			for p := range o.profiles {
				set := f.profile(rng, o.stacks, track == "canary")
				values += len(set.Stacks)
				b.Profiles = append(b.Profiles, &model.Profile{Type: cpu, Labels: ls, Time: hour.Add(time.Duration(p) * 10 * time.Minute),
					Duration: 10 * time.Minute, Scale: period, Stacks: set})
			}
			if err := st.Append(ctx, &b); err != nil {
				return 0, fmt.Errorf("append %s: %w", ls, err)
			}
		}
	}
	return values, nil
}
