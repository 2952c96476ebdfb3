// Package storetest is the conformance suite every store backend passes:
// merges, labels, series, retention, idempotency, atomicity, concurrency and
// reopening, checked against a brute-force reference.
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// Backend opens a store in dir; opening the same dir again must see what
// was stored before.
type Backend func(t *testing.T, dir string) store.Store

// Maintainer is implemented by stores with background work (rollups,
// compaction) that tests must be able to run to completion at a given time.
type Maintainer interface {
	Maintain(ctx context.Context, now time.Time) error
}

// Run runs the whole suite.
func Run(t *testing.T, open Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"MergeMatchesReference", testMergeMatchesReference},
		{"FramesRoundTrip", testFramesRoundTrip},
		{"MergeBy", testMergeBy},
		{"MergeByTable", testMergeByTable},
		{"LabelsAndSeries", testLabelsAndSeries},
		{"SeriesOverTime", testSeriesOverTime},
		{"Idempotent", testIdempotent},
		{"AtomicBatch", testAtomicBatch},
		{"Retention", testRetention},
		{"Reopen", testReopen},
		{"ConcurrentWritersAndReaders", testConcurrent},
		{"RollupsAgreeWithRaw", testRollups},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

var cpuType = model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}

// base is an hour boundary so that tests span rollup buckets predictably.
var base = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// fleet generates profiles of a small fleet: a frame universe shared by all,
// each series drawing from its own skewed subset, like real services.
type fleet struct {
	rng    *rand.Rand
	frames []model.Frame
	stacks [][]int32 // universe of stacks over frames
}

func newFleet(seed uint64) *fleet {
	f := &fleet{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := 0; i < 60; i++ {
		f.frames = append(f.frames, model.Frame{Function: fmt.Sprintf("pkg.fn%02d", i), File: fmt.Sprintf("pkg/f%d.go", i%7), Line: int64(10 + i)})
	}
	for i := 0; i < 200; i++ {
		depth := 3 + f.rng.IntN(12)
		st := make([]int32, depth)
		for d := range st {
			st[d] = int32(f.rng.IntN(len(f.frames)))
		}
		f.stacks = append(f.stacks, st)
	}
	return f
}

func (f *fleet) profile(ls labels.Labels, at time.Time, n int) *model.Profile {
	p := &model.Profile{Type: cpuType, Labels: ls, Time: at, Duration: 10 * time.Second, Scale: 10_000_000}
	p.Stacks.Frames = f.frames
	seen := map[int]int{}
	for i := 0; i < n; i++ {
		k := int(f.rng.ExpFloat64()*20) % len(f.stacks)
		if j, ok := seen[k]; ok {
			p.Stacks.Values[j]++
			continue
		}
		seen[k] = len(p.Stacks.Stacks)
		p.Stacks.Stacks = append(p.Stacks.Stacks, f.stacks[k])
		p.Stacks.Values = append(p.Stacks.Values, 1+int64(f.rng.IntN(5)))
	}
	return p
}

// reference is the brute-force truth: every appended profile kept as is.
type reference struct {
	mu       sync.Mutex
	profiles []*model.Profile
}

func (r *reference) add(ps ...*model.Profile) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.profiles = append(r.profiles, ps...)
}

// merge returns stack key → value*scale for the query.
func (r *reference) merge(q store.Query) map[string]int64 {
	out := map[string]int64{}
	for _, p := range r.profiles {
		if !selected(p, q) {
			continue
		}
		for i, st := range p.Stacks.Stacks {
			out[stackKey(p.Stacks.Frames, st)] += p.Stacks.Values[i] * p.Scale
		}
	}
	return out
}

func selected(p *model.Profile, q store.Query) bool {
	if p.Type.Name != q.Type || p.Time.Before(q.Start) || !p.Time.Before(q.End) {
		return false
	}
	for _, m := range q.Matchers {
		if !m.Matches(p.Labels.Get(m.Name)) {
			return false
		}
	}
	return true
}

func stackKey(frames []model.Frame, st []int32) string {
	var b strings.Builder
	for _, i := range st {
		f := frames[i]
		fmt.Fprintf(&b, "%s|%s|%d|%v|%s|%s|%x;", f.Function, f.File, f.Line, f.Inlined, f.Mapping, f.BuildID, f.Address)
	}
	return b.String()
}

func flatten(s *model.StackSet) map[string]int64 {
	out := map[string]int64{}
	for i, st := range s.Stacks {
		out[stackKey(s.Frames, st)] += s.Values[i]
	}
	return out
}

func mustAppend(t *testing.T, s store.Store, b *model.Batch) {
	t.Helper()
	if err := s.Append(context.Background(), b); err != nil {
		t.Fatalf("append: %v", err)
	}
}

func eq(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, name, value)
}

func compare(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d distinct stacks, want %d", what, len(got), len(want))
	}
	bad := 0
	for k, w := range want {
		if g := got[k]; g != w {
			if bad < 3 {
				t.Errorf("%s: stack %.80s... = %d, want %d", what, k, g, w)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d stacks differ", what, bad)
	}
}

func seriesLabels(node, service, version string) labels.Labels {
	return labels.FromStrings("node", node, "service", service, "version", version)
}

func sortedStrings(ss []string) []string {
	out := slices.Clone(ss)
	sort.Strings(out)
	return out
}
