package diff

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// benchSide is what MergeBy returns for the bench-diff fleet's side:
// instances of ~12,000 distinct stacks of depth 8–30 over 20,000
// functions, each group with its own frame table over the same name
// strings, as the store builds them from its dictionary.
func benchSide(rng *rand.Rand, instances int) []store.Group {
	const functions, stacks = 20000, 12000
	names := make([]string, functions)
	for i := range names {
		names[i] = fmt.Sprintf("github.com/acme/api/pkg%03d.(*T%d).Method%d", i%500, i%37, i)
	}
	groups := make([]store.Group, instances)
	for g := range groups {
		set := &model.StackSet{}
		frameOf := map[int32]int32{}
		for range stacks {
			depth := 8 + rng.IntN(23)
			st := make([]int32, depth)
			for i := range st {
				fn := int32(rng.IntN(functions))
				if i == depth-1 {
					fn = int32(rng.IntN(20))
				}
				fi, ok := frameOf[fn]
				if !ok {
					fi = int32(len(set.Frames))
					set.Frames = append(set.Frames, model.Frame{Function: names[fn]})
					frameOf[fn] = fi
				}
				st[i] = fi
			}
			set.Stacks = append(set.Stacks, st)
			set.Values = append(set.Values, int64(1+rng.IntN(100)))
		}
		groups[g] = store.Group{Labels: labels.FromStrings("pod", fmt.Sprint(g)), Stacks: set}
	}
	return groups
}

// BenchmarkCompare is the diff's own share of bench-diff (make bench-diff):
// summarizing 100+100 instances and testing, without the store's reads.
func BenchmarkCompare(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	base, target := benchSide(rng, 100), benchSide(rng, 100)
	b.ResetTimer()
	for range b.N {
		bs, err := summarize(base, true)
		if err != nil {
			b.Fatal(err)
		}
		ts, err := summarize(target, true)
		if err != nil {
			b.Fatal(err)
		}
		compare(&bs, &ts, Options{})
	}
}
