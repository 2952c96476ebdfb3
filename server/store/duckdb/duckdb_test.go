package duckdb

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

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
// hours from h1 and whole 10-minute buckets from m10, that closed hours were
// compacted, and that merges agree with the raw-only answer.
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
	if !s.w.compacted[rawTable(0, base.UnixMilli())] || s.w.compacted[rawTable(0, base.Add(2*time.Hour).UnixMilli())] {
		t.Errorf("compacted %v: want hours 10 and 11 only", s.w.compacted)
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
