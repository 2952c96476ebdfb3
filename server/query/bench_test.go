package query

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flightrec/flightrec/server/model"
)

// bigSet has about 50k distinct call paths over 2000 functions, the size
// of a busy service's hour.
func bigSet() *model.StackSet {
	rng := rand.New(rand.NewPCG(1, 2))
	set := &model.StackSet{}
	for i := range 2000 {
		set.Frames = append(set.Frames, model.Frame{Function: fmt.Sprintf("pkg%d.fn%d", i%40, i)})
	}
	for range 50_000 {
		st := make([]int32, 5+rng.IntN(20))
		for d := range st {
			st[d] = int32(rng.IntN(len(set.Frames)))
		}
		set.Stacks = append(set.Stacks, st)
		set.Values = append(set.Values, 1+rng.Int64N(1000))
	}
	return set
}

func BenchmarkFlamegraph(b *testing.B) {
	set := bigSet()
	for _, max := range []int{16384, 50_000} {
		b.Run(fmt.Sprint(max), func(b *testing.B) {
			for b.Loop() {
				fg := NewFlamegraph(set, max)
				if _, err := json.Marshal(fg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTop(b *testing.B) {
	set := bigSet()
	for b.Loop() {
		NewTop(set, BySelf, 50)
	}
}

func BenchmarkPprof(b *testing.B) {
	set := bigSet()
	for b.Loop() {
		Pprof(set, model.Type{Name: "cpu"}, time.Time{}, time.Time{})
	}
}
