package apitest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

// Tracks is a deployment in progress, for the diff's tests: CPU profiles
// of service "web", n pods on track "baseline" and n on track "canary",
// each with 3 profiles 10 s apart from base. Every pod spends ~10% in
// web.compress, the canary's compress more by slower points of share (0.03
// is 3 points) at the others' expense; pods differ by a few percent, by a
// fixed seed, so that there is an instance variance to test against.
//
//	web.parse ← web.handle ← main.main        40%
//	runtime.mallocgc ← web.handle ← main.main 20%
//	web.compress ← web.handle ← main.main     10%
//	web.handle ← main.main                    30%
func Tracks(base time.Time, n int, slower float64) []*model.Profile {
	frames := []model.Frame{{Function: "main.main"}, {Function: "web.handle"}, {Function: "web.parse"},
		{Function: "web.compress"}, {Function: "runtime.mallocgc"}}
	stacks := [][]int32{{2, 1, 0}, {4, 1, 0}, {3, 1, 0}, {1, 0}}
	cpu := model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	rng := rand.New(rand.NewPCG(7, 7))
	var out []*model.Profile
	for _, track := range []string{"baseline", "canary"} {
		share := []float64{0.4, 0.2, 0.1, 0.3}
		if track == "canary" {
			for i := range share {
				share[i] *= (1 - 0.1 - slower) / 0.9
			}
			share[2] = 0.1 + slower
		}
		for i := range n {
			ls := labels.FromStrings("service", "web", "track", track, "pod", fmt.Sprintf("web-%s-%d", track, i),
				"node", fmt.Sprintf("n%d", i%3), "pid", fmt.Sprint(100+i))
			for k := range 3 {
				values := make([]int64, len(stacks))
				for s := range stacks {
					values[s] = int64(1000 * share[s] * (1 + 0.05*rng.NormFloat64()))
				}
				out = append(out, &model.Profile{Type: cpu, Labels: ls, Time: base.Add(time.Duration(k) * 10 * time.Second),
					Duration: 10 * time.Second, Scale: 10_000_000, Stacks: model.StackSet{Frames: frames, Stacks: stacks, Values: values}})
			}
		}
	}
	return out
}
