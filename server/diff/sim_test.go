package diff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// simService is the ground truth of a simulated service: the stacks of a
// call tree and the share of samples each gets.
type simService struct {
	frames []model.Frame
	stacks [][]int32 // leaf first
	share  []float64 // sums to 1
}

// changed is the leaf the tests make slower.
const changed = "runtime.mallocgc"

// simLeaves are the leaves of the simulated call tree, changed first.
func simLeaves() []string {
	return []string{changed, "runtime.memmove", "encoding/json.(*decodeState).object", "syscall.Syscall",
		"crypto/sha256.block", "compress/flate.(*compressor).deflate", "regexp.(*Regexp).doExecute",
		"net/http.(*conn).readRequest", "strconv.ParseFloat", "sort.pdqsort", "runtime.mapaccess2",
		"bytes.(*Buffer).WriteString", "fmt.(*pp).doPrintf", "time.Now", "sync.(*Mutex).lockSlow",
		"runtime.futex", "database/sql.(*DB).conn", "hash/crc32.update",
	}
}

// newSimService builds a service of 8 handlers under main and the HTTP
// server, each calling 4 or 5 of the leaves (mallocgc under 2 of them),
// some through a helper, plus handler self time and GC workers. Stack shares
// are Zipf-like, a few large and many small, and changed gets 5% self.
func newSimService() *simService {
	rng := rand.New(rand.NewPCG(42, 1))
	s := &simService{}
	frame := func(name string) int32 {
		s.frames = append(s.frames, model.Frame{Function: name, File: "/src/" + name + ".go", Line: 1})
		return int32(len(s.frames) - 1)
	}
	names := simLeaves()
	leaf := make([]int32, len(names))
	for i, n := range names {
		leaf[i] = frame(n)
	}
	main, serve, gc := frame("main.main"), frame("net/http.(*Server).Serve"), frame("runtime.gcBgMarkWorker")
	helper := frame("app.(*Store).load")
	for h := range 8 {
		handler := frame(fmt.Sprintf("app.handler%d", h))
		s.stacks = append(s.stacks, []int32{handler, serve, main})
		picks := rng.Perm(len(leaf) - 1)[:4]
		if h%4 == 0 {
			picks = append(picks, -1) // mallocgc, index 0
		}
		for j, p := range picks {
			st := []int32{leaf[p+1], handler, serve, main}
			if j%3 == 2 {
				st = []int32{leaf[p+1], helper, handler, serve, main}
			}
			s.stacks = append(s.stacks, st)
		}
	}
	s.stacks = append(s.stacks, []int32{frame("runtime.scanobject"), gc}, []int32{frame("runtime.markroot"), gc})
	order := rng.Perm(len(s.stacks))
	s.share = make([]float64, len(s.stacks))
	for i, k := range order {
		s.share[i] = 1 / float64(k+3)
	}
	normalize(s.share)
	return s.withSelf(changed, 0.05)
}

func normalize(w []float64) {
	var sum float64
	for _, v := range w {
		sum += v
	}
	for i := range w {
		w[i] /= sum
	}
}

// selfShare is fn's true self share.
func (s *simService) selfShare(fn string) float64 {
	return s.shareOf(func(st []int32) bool { return s.frames[st[0]].Function == fn })
}

// withSelf returns a copy where fn's self share is want, by scaling its
// stacks and renormalizing: the others shrink in proportion, as a slower
// function crowds out the rest of a CPU profile.
func (s *simService) withSelf(fn string, want float64) *simService {
	return s.scaled(func(st []int32) bool { return s.frames[st[0]].Function == fn }, want)
}

// withPath is withSelf for the one stack whose call path, root first, is
// path: a slowdown on one route into a function, not the others.
func (s *simService) withPath(path string, want float64) *simService {
	return s.scaled(func(st []int32) bool { return s.path(st) == path }, want)
}

// path is a stack's call path, root;...;leaf.
func (s *simService) path(st []int32) string {
	names := make([]string, len(st))
	for i, f := range st {
		names[len(st)-1-i] = s.frames[f].Function
	}
	return joinFrames(names)
}

// shareOf is the true share of the stacks that match.
func (s *simService) shareOf(match func([]int32) bool) float64 {
	var sh float64
	for i, st := range s.stacks {
		if match(st) {
			sh += s.share[i]
		}
	}
	return sh
}

// scaled returns a copy where the stacks that match take want of the
// total together, by scaling them and renormalizing.
func (s *simService) scaled(match func([]int32) bool, want float64) *simService {
	have := s.shareOf(match)
	k := want * (1 - have) / (have * (1 - want))
	out := &simService{frames: s.frames, stacks: s.stacks, share: slices.Clone(s.share)}
	for i, st := range s.stacks {
		if match(st) {
			out.share[i] *= k
		}
	}
	normalize(out.share)
	return out
}

// fleetShape is how a side's instances vary around the truth.
type fleetShape struct {
	instances, intervals, samples int
	// instanceSigma is the log-normal jitter of each stack's share per
	// instance (its traffic mix, data, cache and hardware); intervalSigma
	// per interval of an instance (load changing over the hour).
	instanceSigma, intervalSigma float64
}

// defaultShape: 10 instances of 3 intervals of 3000 samples (a 10-minute
// interval at 100 Hz sampling of a half-busy core is ~30,000: 3000 is the
// harder case), stack shares jittered by 12% across instances and 5% across
// intervals. A function's share then varies from instance to instance by
// about twice its sampling noise (TestOverdispersion): the over-dispersion
// the pooled test ignores, on the homogeneous side of real fleets
// (TestPower shows power on noisier ones).
func defaultShape() fleetShape {
	return fleetShape{instances: 10, intervals: 3, samples: 3000, instanceSigma: 0.12, intervalSigma: 0.05}
}

// fleet draws one side: per instance, jittered shares; per interval,
// jittered again and sampled (multinomial); the instance's stack set is the
// sum of its intervals, as MergeBy returns it.
func (s *simService) fleet(rng *rand.Rand, shape fleetShape, track string) []store.Group {
	groups := make([]store.Group, shape.instances)
	inst := make([]float64, len(s.share))
	interval := make([]float64, len(s.share))
	counts := make([]int64, len(s.share))
	for i := range groups {
		jitter(rng, s.share, inst, shape.instanceSigma)
		clear(counts)
		for range shape.intervals {
			jitter(rng, inst, interval, shape.intervalSigma)
			multinomial(rng, interval, shape.samples, counts)
		}
		set := &model.StackSet{Frames: s.frames}
		for k, c := range counts {
			if c > 0 {
				set.Stacks = append(set.Stacks, s.stacks[k])
				set.Values = append(set.Values, c)
			}
		}
		groups[i] = store.Group{Labels: labels.FromStrings("pod", fmt.Sprintf("%s-%d", track, i)), Stacks: set}
	}
	return groups
}

// jitter sets out to in times mean-one log-normal noise, normalized.
func jitter(rng *rand.Rand, in, out []float64, sigma float64) {
	for i, v := range in {
		out[i] = v * math.Exp(sigma*rng.NormFloat64()-sigma*sigma/2)
	}
	normalize(out)
}

// multinomial adds n draws from the distribution p to counts, by Vose's
// alias method: one random number a draw, which keeps thousands of
// simulated fleets fast.
func multinomial(rng *rand.Rand, p []float64, n int, counts []int64) {
	k := len(p)
	prob, alias := make([]float64, k), make([]int, k)
	var small, large []int
	for i, v := range p {
		prob[i] = v * float64(k)
		if prob[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small, large = small[:len(small)-1], large[:len(large)-1]
		alias[s] = l
		prob[l] -= 1 - prob[s]
		if prob[l] < 1 {
			small = append(small, l)
		} else {
			large = append(large, l)
		}
	}
	for _, i := range slices.Concat(small, large) { // rounding leftovers
		prob[i] = 1
	}
	for range n {
		u := rng.Uint64()
		i := int((u >> 32) * uint64(k) >> 32)
		if float64(u&(1<<32-1))/(1<<32) < prob[i] {
			counts[i]++
		} else {
			counts[alias[i]]++
		}
	}
}
