package diff

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// benchTables are what MergeByTable returns for bench-diff's sides: a
// universe of 60,000 stacks of depth 8–30 over 20,000 functions, walked
// down a call graph so that upper frames are shared as in real programs
// (bench/diff's fleet), and per instance ~14,000 of them, popular ones
// more often.
func benchTables(rng *rand.Rand, instances int) (base, target *store.StackTable) {
	const functions, universe, perInstance = 20000, 60000, 14000
	t := &store.StackTable{}
	callees := make([][]int32, functions)
	for i := range functions {
		t.Frames = append(t.Frames, model.Frame{Function: fmt.Sprintf("github.com/acme/api/pkg%03d.(*T%d).Method%d", i%500, i%37, i)})
		for range 6 {
			callees[i] = append(callees[i], int32(rng.IntN(functions)))
		}
	}
	for k := range universe {
		depth := 8 + rng.IntN(23)
		path := []int32{int32(rng.IntN(20))}
		for len(path) < depth-1 {
			path = append(path, callees[path[len(path)-1]][min(int(rng.ExpFloat64()*1.5), 5)])
		}
		path = append(path, int32(k%functions))
		for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 { // leaf first
			path[i], path[j] = path[j], path[i]
		}
		t.Stacks = append(t.Stacks, path)
	}
	base, target = &store.StackTable{Frames: t.Frames, Stacks: t.Stacks}, &store.StackTable{Frames: t.Frames, Stacks: t.Stacks}
	for g := range 2 * instances {
		tg := store.TableGroup{Labels: labels.FromStrings("pod", fmt.Sprint(g))}
		seen := map[int32]bool{}
		for len(tg.Stack) < perInstance {
			k := int32(int(rng.ExpFloat64()*universe/8) % universe)
			if !seen[k] {
				seen[k] = true
				tg.Stack, tg.Value = append(tg.Stack, k), append(tg.Value, int64(1+rng.IntN(100)))
			}
		}
		side := base
		if g >= instances {
			side = target
		}
		side.Groups = append(side.Groups, tg)
	}
	return base, target
}

// BenchmarkCompare is the diff's own share of bench-diff (make bench-diff):
// grouping 100+100 instances, choosing and filling the tests of functions
// and call paths, and testing, from the store's tables.
func BenchmarkCompare(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	bt, tt := benchTables(rng, 100)
	b.ResetTimer()
	for range b.N {
		nm := newNames()
		bs, err1 := newFleet(bt, true, nm)
		ts, err2 := newFleet(tt, true, nm)
		if err1 != nil || err2 != nil {
			b.Fatal(err1, err2)
		}
		res := compare(&bs, &ts, nm, Options{})
		if len(res.Paths) == 0 {
			b.Fatal("no call paths tested")
		}
	}
}
