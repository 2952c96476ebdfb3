package duckdb

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
	"github.com/flightrec/flightrec/server/model"
)

// fpPprof is an agent-like pprof profile: procs processes, each with
// stacks of depth 20 over 400 functions of one executable, some frames
// inlined, some unsymbolized, one name of invalid UTF-8.
func fpPprof(seed uint64, procs int) *profile.Profile {
	r := rand.New(rand.NewPCG(seed, 7))
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     1, TimeNanos: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
	}
	m := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x800000, File: "/srv/app", BuildID: "b1d"}
	p.Mapping = []*profile.Mapping{m}
	for i := range 400 {
		name := fmt.Sprintf("acme/pkg%d.F%d", i%17, i)
		if i == 5 {
			name = "bad\xffname"
		}
		p.Function = append(p.Function, &profile.Function{ID: uint64(i + 1), Name: name, Filename: fmt.Sprintf("/src/pkg%d.go", i%17)})
	}
	for i := range 600 {
		loc := &profile.Location{ID: uint64(i + 1), Mapping: m, Address: 0x400000 + uint64(i)*16}
		if i%50 != 49 { // else unsymbolized
			loc.Line = []profile.Line{{Function: p.Function[r.IntN(400)], Line: int64(1 + r.IntN(300))}}
			if i%10 == 0 { // an inlined call
				loc.Line = append([]profile.Line{{Function: p.Function[r.IntN(400)], Line: 7}}, loc.Line...)
			}
		}
		p.Location = append(p.Location, loc)
	}
	for pid := range procs {
		for range 100 {
			s := &profile.Sample{Value: []int64{1 + r.Int64N(9)}, Label: map[string][]string{"pid": {fmt.Sprint(pid)}}}
			for range 20 {
				s.Location = append(s.Location, p.Location[r.IntN(len(p.Location))])
			}
			p.Sample = append(p.Sample, s)
		}
	}
	return p
}

func fpProfiles(tb testing.TB, seed uint64, procs int) []*model.Profile {
	tb.Helper()
	ps, _, err := pprofconv.Convert(fpPprof(seed, procs), pprofconv.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return ps
}

// plain returns p with its frames in another order and no fingerprints:
// what a caller other than ingest hands the store.
func plain(p *model.Profile) *model.Profile {
	q := *p
	n := len(p.Stacks.Frames)
	perm := rand.New(rand.NewPCG(uint64(n), 1)).Perm(n)
	q.Stacks = model.StackSet{Frames: make([]model.Frame, n), Values: p.Stacks.Values}
	for i, f := range p.Stacks.Frames {
		q.Stacks.Frames[perm[i]] = f
	}
	for _, st := range p.Stacks.Stacks {
		nst := make([]int32, len(st))
		for j, f := range st {
			nst[j] = int32(perm[f])
		}
		q.Stacks.Stacks = append(q.Stacks.Stacks, nst)
	}
	return &q
}

// checkStacks checks that every stack id holds exactly p's frames.
func checkStacks(t *testing.T, d *dictionary, p *model.Profile, got ids) {
	t.Helper()
	for i, st := range p.Stacks.Stacks {
		var frames []model.Frame
		for id := got.stacks[i]; id != 0; id = d.stacks[id].parent {
			frames = append(frames, d.frame(d.stacks[id].location))
		}
		want := make([]model.Frame, len(st))
		for j, f := range st {
			want[j] = p.Stacks.Frames[f]
		}
		if !slices.Equal(frames, want) {
			t.Fatalf("stack %d: id %d holds %v, want %v", i, got.stacks[i], frames, want)
		}
	}
}

// TestInternFrameFPs: a frame gets the same location, and a stack the same
// id, whether its fingerprints came from ingest or were computed by the
// store, in either order.
func TestInternFrameFPs(t *testing.T) {
	tests := []struct {
		name          string
		first, second func(*model.Profile) *model.Profile
	}{
		{"ingest then plain", keep, plain},
		{"plain then ingest", plain, keep},
		{"ingest twice", keep, keep},
		{"wrong length ignored", keep, wrongLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDictionary()
			for _, p := range fpProfiles(t, 1, 3) {
				if len(p.Stacks.FrameFPs) != len(p.Stacks.Frames) {
					t.Fatalf("pprofconv gave %d fingerprints for %d frames", len(p.Stacks.FrameFPs), len(p.Stacks.Frames))
				}
				a, b := tt.first(p), tt.second(p)
				ida := d.intern(new(internRun), a)
				checkStacks(t, d, a, ida)
				locs := len(d.locations)
				// Every stack of b is found by its fingerprint alone, so both
				// paths fingerprint frames alike.
				var r internRun
				if _, ok := r.run(d, b, false); !ok {
					t.Fatalf("a stack interned through one path is not found by fingerprint through the other")
				}
				idb := d.intern(new(internRun), b)
				checkStacks(t, d, b, idb)
				if !slices.Equal(ida.stacks, idb.stacks) {
					t.Errorf("stack ids differ:\n%v\n%v", ida.stacks, idb.stacks)
				}
				if len(d.locations) != locs {
					t.Errorf("the second path added %d locations", len(d.locations)-locs)
				}
			}
			for loc := 1; loc < len(d.locations); loc++ {
				if got, want := d.locFPs[loc], model.FrameFP(d.frame(uint32(loc))); got != want {
					t.Errorf("location %d: fingerprint %x, want %x", loc, got, want)
				}
			}
		})
	}
}

func keep(p *model.Profile) *model.Profile { return p }

func wrongLength(p *model.Profile) *model.Profile {
	q := *p
	q.Stacks.FrameFPs = q.Stacks.FrameFPs[:len(q.Stacks.FrameFPs)-1]
	return &q
}

// TestInternFPCollision: frames whose fingerprints collide still get
// locations of their own, as the store finds locations by content.
func TestInternFPCollision(t *testing.T) {
	d := newDictionary()
	x, y, w := model.Frame{Function: "x"}, model.Frame{Function: "y"}, model.Frame{Function: "w"}
	typ := model.Type{Name: "cpu"}
	px := &model.Profile{Type: typ, Stacks: model.StackSet{Frames: []model.Frame{x}, Stacks: [][]int32{{0}}, Values: []int64{1},
		FrameFPs: []uint64{42}}}
	// y claims x's fingerprint; under w the stack is new, so y is looked up.
	py := &model.Profile{Type: typ, Stacks: model.StackSet{Frames: []model.Frame{y, w}, Stacks: [][]int32{{0, 1}}, Values: []int64{1},
		FrameFPs: []uint64{42, model.FrameFP(w)}}}
	idx, idy := d.intern(new(internRun), px), d.intern(new(internRun), py)
	checkStacks(t, d, px, idx)
	checkStacks(t, d, py, idy)
	if lx, ly := d.frameByKey[x], d.frameByKey[y]; lx == 0 || ly == 0 || lx == ly {
		t.Errorf("locations of x and y: %d and %d, want two", lx, ly)
	}
}

// BenchmarkIntern interns converted agent-like profiles into a warm
// dictionary: the steady state of ingest, every stack known. "ingest"
// uses the fingerprints pprofconv attached, "store" makes the store
// compute them.
func BenchmarkIntern(b *testing.B) {
	var ps []*model.Profile
	for seed := range uint64(4) {
		ps = append(ps, fpProfiles(b, seed+1, 2)...)
	}
	for _, mode := range []string{"ingest", "store"} {
		b.Run("fps="+mode, func(b *testing.B) {
			d := newDictionary()
			in := ps
			if mode == "store" {
				in = nil
				for _, p := range ps {
					q := *p
					q.Stacks.FrameFPs = nil
					in = append(in, &q)
				}
			}
			for _, p := range in {
				d.intern(new(internRun), p)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				d.intern(new(internRun), in[i%len(in)])
				i++
			}
		})
	}
}

// TestComputeFP: the store's fingerprint, with its cache of the last
// mapping, is model.FrameFP whatever the order of mappings.
func TestComputeFP(t *testing.T) {
	frames := []model.Frame{
		{Function: "a", File: "a.go", Line: 1, Mapping: "/bin/x", BuildID: "1"},
		{Function: "b", File: "b.go", Line: 2, Mapping: "/bin/x", BuildID: "1", Inlined: true},
		{Function: "c", Mapping: "/lib/y", BuildID: "1"},
		{Function: "c", Mapping: "/lib/y", BuildID: "2"},
		{Address: 0x1234},
		{Function: "a", File: "a.go", Line: 1, Mapping: "/bin/x", BuildID: "1"},
	}
	var r internRun
	for i := range frames {
		if got, want := r.computeFP(&frames[i]), model.FrameFP(frames[i]); got != want {
			t.Errorf("frame %d %+v: %x, want %x", i, frames[i], got, want)
		}
	}
}

// TestInternSharedFrames: the profiles of one conversion share a frame
// table, and one internRun over them (as Append uses) gives every stack
// the id that interning each profile alone, over frames of its own, gives.
func TestInternSharedFrames(t *testing.T) {
	ps := fpProfiles(t, 2, 3)
	if len(ps) < 2 || &ps[0].Stacks.Frames[0] != &ps[1].Stacks.Frames[0] {
		t.Fatalf("want profiles sharing one frame table, got %d profiles", len(ps))
	}
	shared, alone := newDictionary(), newDictionary()
	var r internRun
	for i, p := range ps {
		got := shared.intern(&r, p)
		checkStacks(t, shared, p, got)
		q := plain(p) // frames of its own, in another order
		want := alone.intern(new(internRun), q)
		checkStacks(t, alone, q, want)
		if !slices.Equal(got.stacks, want.stacks) {
			t.Errorf("profile %d: stack ids %v, alone %v", i, got.stacks, want.stacks)
		}
	}
	if len(shared.locations) != len(alone.locations) || len(shared.stacks) != len(alone.stacks) {
		t.Errorf("shared: %d locations, %d stacks; alone: %d, %d", len(shared.locations), len(shared.stacks), len(alone.locations), len(alone.stacks))
	}
}
