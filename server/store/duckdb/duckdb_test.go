package duckdb

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"

	"github.com/flightrec/flightrec/server/store"
	"github.com/flightrec/flightrec/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dir string) store.Store {
		s, err := Open(dir, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestPlanUsesRollups checks that after maintenance the planner reads whole
// hours from h1 and whole 10-minute buckets from m10, and that merges agree
// with the raw-only answer.
func TestPlanUsesRollups(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	p := func(at time.Time, v int64) *model.Profile {
		return &model.Profile{Type: model.Type{Name: "cpu"}, Labels: labels.FromStrings("node", "n1"), Time: at, Scale: 2,
			Stacks: model.StackSet{Frames: []model.Frame{{Function: "a"}, {Function: "b"}}, Stacks: [][]int32{{0, 1}, {1}}, Values: []int64{v, 1}}}
	}
	ctx := context.Background()
	var want int64
	for i := 0; i < 3*360; i++ { // three hours, every 10 s
		if err := s.Append(ctx, &model.Batch{Profiles: []*model.Profile{p(base.Add(time.Duration(i)*10*time.Second), int64(i%7))}}); err != nil {
			t.Fatal(err)
		}
		want += 2 * (int64(i%7) + 1)
	}
	if err := s.Maintain(ctx, base.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, wantWM := s.w.m10.Load(), base.Add(2*time.Hour+50*time.Minute).UnixMilli(); got != wantWM {
		t.Errorf("m10 watermark %v, want %v (data ends at 13:00, lateness 2 min)", time.UnixMilli(got).UTC(), time.UnixMilli(wantWM).UTC())
	}
	if got := s.w.h1.Load(); got != base.Add(2*time.Hour).UnixMilli() {
		t.Errorf("h1 watermark %v, want 12:00", time.UnixMilli(got).UTC())
	}
	pieces := s.plan(0, base.Add(5*time.Minute).UnixMilli(), base.Add(2*time.Hour+55*time.Minute).UnixMilli())
	var levels []string
	for _, pc := range pieces {
		levels = append(levels, strings.SplitN(pc.table, "_", 2)[0])
	}
	if want := []string{"raw", "m10", "h1", "m10", "raw"}; !slices.Equal(levels, want) {
		t.Errorf("plan levels %v, want %v (pieces %+v)", levels, want, pieces)
	}
	got, err := s.Merge(ctx, store.Query{Type: "cpu", Start: base, End: base.Add(3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Total() != want {
		t.Errorf("merged total %d, want %d", got.Total(), want)
	}
}

// TestReopenAfterCancelledQueries cancels merges while they run, closes the
// store and opens it again: an interrupted DuckDB query used to keep the
// instance alive, and the reopen then spun forever in DuckDB's instance
// cache (about one round in ten).
func TestReopenAfterCancelledQueries(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour).Truncate(time.Hour)
	for round := 0; round < 30; round++ {
		s, err := Open(dir, Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		p := &model.Profile{Type: model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"},
			Labels: labels.FromStrings("service", "a", "round", strings.Repeat("x", round+1)), Time: base.Add(time.Duration(round) * time.Second), Duration: 10 * time.Second, Scale: 1,
			Stacks: model.StackSet{Frames: []model.Frame{{Function: "f"}, {Function: "g"}}, Stacks: [][]int32{{0, 1}, {1}}, Values: []int64{1, 2}}}
		if err := s.Append(context.Background(), &model.Batch{Profiles: []*model.Profile{p}}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		for r := 0; r < 2; r++ {
			go func() {
				defer func() { done <- struct{}{} }()
				for ctx.Err() == nil {
					s.Merge(ctx, store.Query{Type: "cpu", Start: base, End: base.Add(time.Hour)})
				}
			}()
		}
		time.Sleep(30 * time.Millisecond)
		cancel()
		<-done
		<-done
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		opened := make(chan error, 1)
		go func() {
			s, err := Open(dir, Options{Threads: 2})
			if err == nil {
				err = s.Close()
			}
			opened <- err
		}()
		select {
		case err := <-opened:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: reopening after cancelled queries hangs", round)
		}
	}
}

// TestGroupCommit checks that Appends announced with Expect are committed
// together, and that an announcement whose Append never comes delays the
// others by a bounded wait only.
func TestGroupCommit(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	batch := func(node string) *model.Batch {
		return &model.Batch{Profiles: []*model.Profile{{Type: model.Type{Name: "cpu"}, Labels: labels.FromStrings("node", node), Time: at, Scale: 1,
			Stacks: model.StackSet{Frames: []model.Frame{{Function: "a"}}, Stacks: [][]int32{{0}}, Values: []int64{1}}}}}
	}
	const n = 4
	var dones [n]func()
	for i := range dones {
		dones[i] = s.Expect()
	}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			time.Sleep(time.Duration(3*i) * time.Millisecond) // decoding, as a request would
			dones[i]()
			errs <- s.Append(ctx, batch(fmt.Sprintf("n%d", i)))
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	txns, batches := s.Commits()
	if batches != n || txns >= n {
		t.Errorf("%d batches in %d transactions: want %d batches, announced ones grouped", batches, txns, n)
	}

	abandoned := s.Expect() // a request that failed to decode, and whose done is late
	defer abandoned()
	start := time.Now()
	if err := s.Append(ctx, batch("late")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Append waited %v for an announced batch that never came", d)
	}
}

// TestRollupChunks checks that a rollup split into chunks of series ids
// keeps every series once: more series than one chunk, of two types whose
// ids interleave, some added after the first rollup.
func TestRollupChunks(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var wantSum int64 // per type, of buckets before 10:20
	add := func(at time.Time, from, to int) {
		for i := from; i < to; i++ {
			if at.Before(base.Add(20 * time.Minute)) {
				wantSum += int64(i + 2)
			}
			for _, typ := range []string{"cpu", "off_cpu"} {
				p := &model.Profile{Type: model.Type{Name: typ}, Labels: labels.FromStrings("node", fmt.Sprint("n", i)), Time: at, Scale: 1,
					Stacks: model.StackSet{Frames: []model.Frame{{Function: "a"}, {Function: "b"}}, Stacks: [][]int32{{0, 1}, {1}}, Values: []int64{int64(i + 1), 1}}}
				if err := s.Append(ctx, &model.Batch{Profiles: []*model.Profile{p}}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	const n = 2*rollupChunkSeries + 10
	add(base.Add(time.Minute), 0, n)
	add(base.Add(2*time.Minute), 0, n)
	if err := s.Maintain(ctx, base.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	add(base.Add(11*time.Minute), n, n+5) // new series, in the next bucket
	add(base.Add(25*time.Minute), 0, 1)   // event time moves on: 10:10 closes
	if err := s.Maintain(ctx, base.Add(25*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r := s.w.seriesRanges(0, rollupChunkSeries); len(r) != 3 {
		t.Errorf("cpu series in %d ranges, want 3: %v", len(r), r)
	}
	const wantRows, wantValues = n + 5, 2*n + 2*5 // a row per series and bucket, of two stacks
	for typeID := range int32(2) {
		var rows, values, sum int64
		q := fmt.Sprintf("SELECT packed FROM %s", m10Table(typeID, base.UnixMilli()))
		err := scanAll(ctx, s.db, q, func(r *sqlRows) error {
			var b []byte
			if err := r.Scan(&b); err != nil {
				return err
			}
			rows++
			return unpack(b, func(_ uint32, v int64) { values, sum = values+1, sum+v })
		})
		if err != nil {
			t.Fatal(err)
		}
		if rows != wantRows || values != wantValues || sum != wantSum {
			t.Errorf("type %d: m10 has %d rows of %d values summing to %d, want %d, %d and %d", typeID, rows, values, sum, wantRows, wantValues, wantSum)
		}
	}
}

// TestStageCopies: once Stage returns, the batch's memory is the caller's
// again (ingest reuses it for the next request): overwriting it before the
// commit changes nothing stored.
func TestStageCopies(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	name := []byte("main.work")
	frames := []model.Frame{{Function: unsafe.String(&name[0], len(name)), File: "main.go", Line: 7}}
	p := &model.Profile{Type: model.Type{Name: "cpu"}, Labels: labels.FromStrings("node", "n1"), Time: at, Scale: 1,
		Stacks: model.StackSet{Frames: frames, Stacks: [][]int32{{0}}, Values: []int64{5}}}
	wait, err := s.Stage(ctx, &model.Batch{Profiles: []*model.Profile{p}, Key: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	copy(name, "XXXX.XXXX")
	p.Stacks.Values[0], p.Labels = 99, labels.FromStrings("node", "other")
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Merge(ctx, store.Query{Type: "cpu", Start: at.Add(-time.Minute), End: at.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Stacks) != 1 || got.Values[0] != 5 || got.Frames[got.Stacks[0][0]].Function != "main.work" {
		t.Fatalf("merged %+v, want main.work = 5", got)
	}
	names, err := s.LabelValues(ctx, "node", store.LabelQuery{Type: "cpu", Start: at.Add(-time.Minute), End: at.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "n1" {
		t.Errorf("node values %v, want [n1]", names)
	}
}

// TestRowGroupSize: tables of the store get row groups of rowGroupSize
// rows (the file is attached with that option), so that a checkpoint
// rewrites at most that much of a table being appended to.
func TestRowGroupSize(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const rows = 2*rowGroupSize + 100
	for _, q := range []string{fmt.Sprintf("CREATE TABLE probe AS SELECT range AS i FROM range(%d)", rows), "CHECKPOINT"} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var groups int
	if err := s.db.QueryRow("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('probe')").Scan(&groups); err != nil {
		t.Fatal(err)
	}
	if groups != 3 {
		t.Errorf("%d rows in %d row groups, want 3 of at most %d rows", rows, groups, rowGroupSize)
	}
	var file string
	if err := s.db.QueryRow("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").Scan(&file); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, fileName); file != want {
		t.Errorf("tables are in %q, want %q", file, want)
	}
}
