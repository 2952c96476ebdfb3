package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

func testMergeMatchesReference(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	f := newFleet(1)
	var ref reference
	for i := 0; i < 30; i++ { // 5 minutes of 10 s profiles
		var b model.Batch
		for n := 0; n < 6; n++ {
			svc := []string{"api", "db"}[n%2]
			p := f.profile(seriesLabels(fmt.Sprintf("n%d", n), svc, "1."+fmt.Sprint(n%3)), base.Add(time.Duration(i)*10*time.Second), 80)
			b.Profiles = append(b.Profiles, p)
		}
		ref.add(b.Profiles...)
		mustAppend(t, s, &b)
	}
	queries := []store.Query{
		{Type: "cpu", Start: base, End: base.Add(time.Hour)},
		{Type: "cpu", Matchers: []*labels.Matcher{eq("service", "api")}, Start: base, End: base.Add(time.Hour)},
		{Type: "cpu", Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "version", "1\\.[01]"), labels.MustNewMatcher(labels.MatchNotEqual, "node", "n0")}, Start: base.Add(time.Minute), End: base.Add(3 * time.Minute)},
		{Type: "cpu", Matchers: []*labels.Matcher{eq("service", "nope")}, Start: base, End: base.Add(time.Hour)},
	}
	for i, q := range queries {
		got, err := s.Merge(context.Background(), q)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("query %d: invalid result: %v", i, err)
		}
		compare(t, fmt.Sprintf("query %d", i), flatten(got), ref.merge(q))
	}
	if got, err := s.Merge(context.Background(), store.Query{Type: "alloc_space", Start: base, End: base.Add(time.Hour)}); err == nil && len(got.Stacks) > 0 {
		t.Errorf("merge of a type never stored returned %d stacks", len(got.Stacks))
	}
}

func testFramesRoundTrip(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	frames := []model.Frame{
		{Function: "main.mix", File: "main.go", Line: 12, Inlined: true, Mapping: "/srv/app", BuildID: "abc"},
		{Function: "main.cpuA", File: "main.go", Line: 30, Mapping: "/srv/app", BuildID: "abc"},
		{Mapping: "/usr/lib/libfoo.so", BuildID: "f00d", Address: 0x1234},
		{Function: "read_zero", Mapping: "[kernel.kallsyms]"},
		{Function: "main.main", File: "main.go", Line: 5, Mapping: "/srv/app", BuildID: "abc"},
	}
	p := &model.Profile{Type: cpuType, Labels: seriesLabels("n1", "api", "1"), Time: base, Duration: 10 * time.Second, Scale: 3,
		Stacks: model.StackSet{Frames: frames, Stacks: [][]int32{{0, 1, 4}, {3, 2, 4}}, Values: []int64{5, 7}}}
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{p}})
	got, err := s.Merge(context.Background(), store.Query{Type: "cpu", Start: base, End: base.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	ref.add(p)
	compare(t, "frames", flatten(got), ref.merge(store.Query{Type: "cpu", Start: base, End: base.Add(time.Minute)}))
	if got.Total() != 36 {
		t.Errorf("total %d, want (5+7)*3 = 36", got.Total())
	}
}

func testMergeBy(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	f := newFleet(2)
	var ref reference
	var b model.Batch
	for n := 0; n < 4; n++ {
		ls := seriesLabels(fmt.Sprintf("n%d", n), "api", []string{"1", "2"}[n%2])
		if n == 3 {
			ls = labels.FromStrings("node", "n3", "service", "api") // no version label
		}
		b.Profiles = append(b.Profiles, f.profile(ls, base, 50), f.profile(ls, base.Add(10*time.Second), 50))
	}
	ref.add(b.Profiles...)
	mustAppend(t, s, &b)
	q := store.Query{Type: "cpu", Start: base, End: base.Add(time.Hour)}
	groups, err := s.MergeBy(context.Background(), q, []string{"version"})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 3 {
		t.Fatalf("%d groups, want 3 (version 1, 2 and missing)", len(groups))
	}
	for _, g := range groups {
		v := g.Labels.Get("version")
		var want map[string]int64
		if v == "" {
			want = ref.merge(store.Query{Type: "cpu", Matchers: []*labels.Matcher{eq("version", "")}, Start: q.Start, End: q.End})
		} else {
			want = ref.merge(store.Query{Type: "cpu", Matchers: []*labels.Matcher{eq("version", v)}, Start: q.Start, End: q.End})
		}
		compare(t, "group version="+v, flatten(g.Stacks), want)
	}
}

func testLabelsAndSeries(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	f := newFleet(3)
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{
		f.profile(seriesLabels("n1", "api", "1.0"), base, 20),
		f.profile(seriesLabels("n2", "api", "1.1"), base.Add(time.Hour), 20),
		f.profile(labels.FromStrings("node", "n1", "service", "db", "tenant", "a"), base, 20),
	}})
	alloc := f.profile(seriesLabels("n3", "web", "9"), base, 20)
	alloc.Type = model.Type{Name: "alloc_space", SampleType: "alloc_space", SampleUnit: "bytes"}
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{alloc}})
	ctx := context.Background()
	all := store.LabelQuery{Start: base, End: base.Add(2 * time.Hour)}

	names, err := s.LabelNames(ctx, all)
	if err != nil || !slices.Equal(sortedStrings(names), []string{"node", "service", "tenant", "version"}) {
		t.Errorf("label names = %v, %v", names, err)
	}
	cpuOnly := store.LabelQuery{Type: "cpu", Start: base, End: base.Add(2 * time.Hour)}
	if v, err := s.LabelValues(ctx, "service", cpuOnly); err != nil || !slices.Equal(sortedStrings(v), []string{"api", "db"}) {
		t.Errorf("cpu service values = %v, %v", v, err)
	}
	firstHour := store.LabelQuery{Type: "cpu", Start: base, End: base.Add(time.Hour)}
	if v, err := s.LabelValues(ctx, "version", firstHour); err != nil || !slices.Equal(v, []string{"1.0"}) {
		t.Errorf("version values in the first hour = %v, %v; want [1.0]", v, err)
	}
	withMatcher := store.LabelQuery{Type: "cpu", Matchers: []*labels.Matcher{eq("service", "db")}, Start: base, End: base.Add(2 * time.Hour)}
	if v, err := s.LabelValues(ctx, "tenant", withMatcher); err != nil || !slices.Equal(v, []string{"a"}) {
		t.Errorf("tenant values for db = %v, %v", v, err)
	}
	series, err := s.Series(ctx, store.Query{Type: "cpu", Matchers: []*labels.Matcher{eq("service", "api")}, Start: base, End: base.Add(2 * time.Hour)})
	if err != nil || len(series) != 2 {
		t.Errorf("api series = %v, %v; want 2", series, err)
	}
	types, err := s.Types(ctx, base, base.Add(2*time.Hour))
	if err != nil || len(types) != 2 {
		t.Fatalf("types = %v, %v; want cpu and alloc_space", types, err)
	}
	if names := []string{types[0].Name, types[1].Name}; !slices.Contains(names, "alloc_space") || !slices.Contains(names, "cpu") {
		t.Errorf("types = %v", types)
	}
}

func testSeriesOverTime(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	f := newFleet(4)
	var ref reference
	var b model.Batch
	for i := 0; i < 12; i++ { // two minutes, two series
		for _, n := range []string{"n1", "n2"} {
			b.Profiles = append(b.Profiles, f.profile(seriesLabels(n, "api", "1"), base.Add(time.Duration(i)*10*time.Second), 30))
		}
	}
	ref.add(b.Profiles...)
	mustAppend(t, s, &b)
	got, err := s.SeriesOverTime(context.Background(), store.Query{Type: "cpu", Start: base, End: base.Add(2 * time.Minute)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d series, want 2", len(got))
	}
	for _, sr := range got {
		if len(sr.Points) != 2 {
			t.Fatalf("series %v has %d points, want 2 one-minute steps", sr.Labels, len(sr.Points))
		}
		for _, pt := range sr.Points {
			q := store.Query{Type: "cpu", Matchers: []*labels.Matcher{eq("node", sr.Labels.Get("node"))}, Start: pt.Time, End: pt.Time.Add(time.Minute)}
			var want int64
			for _, v := range ref.merge(q) {
				want += v
			}
			if pt.Value != want {
				t.Errorf("%s at %v = %d, want %d", sr.Labels.Get("node"), pt.Time, pt.Value, want)
			}
		}
	}
}

func testIdempotent(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	f := newFleet(5)
	p := f.profile(seriesLabels("n1", "api", "1"), base, 40)
	b := &model.Batch{Profiles: []*model.Profile{p}, Key: "agent-1-7"}
	mustAppend(t, s, b)
	mustAppend(t, s, b) // a retry after a lost acknowledgement
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{p}})
	got, err := s.Merge(context.Background(), store.Query{Type: "cpu", Start: base, End: base.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * p.Stacks.Total() * p.Scale; got.Total() != want {
		t.Errorf("total %d, want %d: the keyed retry must be stored once, the unkeyed copy once", got.Total(), want)
	}
}

func testAtomicBatch(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	f := newFleet(6)
	good := f.profile(seriesLabels("n1", "api", "1"), base, 40)
	bad := f.profile(seriesLabels("n2", "api", "1"), base, 40)
	bad.Stacks.Stacks = append(bad.Stacks.Stacks, []int32{9999})
	bad.Stacks.Values = append(bad.Stacks.Values, 1)
	if err := s.Append(context.Background(), &model.Batch{Profiles: []*model.Profile{good, bad}}); err == nil {
		t.Fatal("append of a batch with an invalid profile succeeded")
	}
	got, err := s.Merge(context.Background(), store.Query{Type: "cpu", Start: base, End: base.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Total() != 0 {
		t.Errorf("failed batch left %d stored", got.Total())
	}
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{good}})
	if got, _ := s.Merge(context.Background(), store.Query{Type: "cpu", Start: base, End: base.Add(time.Minute)}); got.Total() != good.Stacks.Total()*good.Scale {
		t.Errorf("store unusable after a failed batch: total %d", got.Total())
	}
}

func testRetention(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	f := newFleet(7)
	old := f.profile(seriesLabels("n1", "api", "old"), base.Add(-48*time.Hour), 40)
	recent := f.profile(seriesLabels("n1", "api", "new"), base, 40)
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{old, recent}})
	if m, ok := s.(Maintainer); ok {
		if err := m.Maintain(context.Background(), base.Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteBefore(context.Background(), base.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	q := store.Query{Type: "cpu", Start: base.Add(-72 * time.Hour), End: base.Add(time.Hour)}
	got, err := s.Merge(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if want := recent.Stacks.Total() * recent.Scale; got.Total() != want {
		t.Errorf("after retention total %d, want only the recent profile's %d", got.Total(), want)
	}
	v, _ := s.LabelValues(context.Background(), "version", store.LabelQuery{Start: q.Start, End: q.End})
	if !slices.Equal(v, []string{"new"}) {
		t.Errorf("versions after retention = %v, want [new]", v)
	}
}

func testReopen(t *testing.T, open Backend) {
	dir := t.TempDir()
	f := newFleet(8)
	p := f.profile(seriesLabels("n1", "api", "1"), base, 60)
	s := open(t, dir)
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{p}, Key: "k1"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{p}, Key: "k1"}) // still a duplicate
	q := store.Query{Type: "cpu", Start: base, End: base.Add(time.Minute)}
	got, err := s.Merge(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	ref.add(p)
	compare(t, "after reopen", flatten(got), ref.merge(q))
	// New data after reopening must not collide with the dictionaries loaded.
	p2 := newFleet(9).profile(seriesLabels("n2", "api", "1"), base, 60)
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{p2}})
	ref.add(p2)
	got, _ = s.Merge(context.Background(), q)
	compare(t, "after reopen and append", flatten(got), ref.merge(q))
	// A second reopen reads what was written after the first one, with the
	// dictionary entries both sessions added.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if got, err = s.Merge(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	compare(t, "after a second reopen", flatten(got), ref.merge(q))
}

func testConcurrent(t *testing.T, open Backend) {
	dir := t.TempDir()
	s := open(t, dir)
	var ref reference
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 16)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			f := newFleet(uint64(100 + w))
			for i := 0; i < 25; i++ {
				p := f.profile(seriesLabels(fmt.Sprintf("w%d", w), "api", "1"), base.Add(time.Duration(i)*10*time.Second), 30)
				if err := s.Append(ctx, &model.Batch{Profiles: []*model.Profile{p}}); err != nil {
					errs <- err
					return
				}
				ref.add(p)
			}
		}(w)
	}
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for ctx.Err() == nil {
				if _, err := s.Merge(ctx, store.Query{Type: "cpu", Start: base, End: base.Add(time.Hour)}); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	q := store.Query{Type: "cpu", Start: base, End: base.Add(time.Hour)}
	got, err := s.Merge(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "concurrent", flatten(got), ref.merge(q))
	// Dictionary entries added by concurrent writers must all have been
	// stored with the rows that use them.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if got, err = s.Merge(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	compare(t, "concurrent, reopened", flatten(got), ref.merge(q))
}

// testRollups stores three hours of data, runs maintenance (which may
// pre-aggregate and reorganize), adds late data, and checks that merges over
// aligned and unaligned ranges still equal the reference.
func testRollups(t *testing.T, open Backend) {
	s := open(t, t.TempDir())
	defer s.Close()
	f := newFleet(10)
	var ref reference
	for i := 0; i < 3*360; i += 3 { // three hours, a profile every 30 s per series
		var b model.Batch
		for n := 0; n < 3; n++ {
			b.Profiles = append(b.Profiles, f.profile(seriesLabels(fmt.Sprintf("n%d", n), "api", "1"), base.Add(time.Duration(i)*10*time.Second), 25))
		}
		ref.add(b.Profiles...)
		mustAppend(t, s, &b)
	}
	m, _ := s.(Maintainer)
	maintain := func(at time.Time) {
		if m != nil {
			if err := m.Maintain(context.Background(), at); err != nil {
				t.Fatal(err)
			}
		}
	}
	maintain(base.Add(3*time.Hour + 30*time.Minute))
	// Late data for an hour already rolled up and reorganized.
	late := f.profile(seriesLabels("n0", "api", "1"), base.Add(75*time.Minute+5*time.Second), 25)
	mustAppend(t, s, &model.Batch{Profiles: []*model.Profile{late}})
	ref.add(late)
	maintain(base.Add(3*time.Hour + 40*time.Minute))

	ranges := [][2]time.Duration{
		{0, 3 * time.Hour},
		{0, time.Hour},
		{7*time.Minute + 13*time.Second, 2*time.Hour + 41*time.Minute},
		{70 * time.Minute, 80 * time.Minute},
		{75 * time.Minute, 75*time.Minute + 10*time.Second},
		{119 * time.Minute, 121 * time.Minute},
	}
	for _, r := range ranges {
		for _, ms := range [][]*labels.Matcher{nil, {eq("node", "n0")}} {
			q := store.Query{Type: "cpu", Matchers: ms, Start: base.Add(r[0]), End: base.Add(r[1])}
			got, err := s.Merge(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, fmt.Sprintf("range %v-%v matchers %v", r[0], r[1], ms), flatten(got), ref.merge(q))
		}
	}
}
