package duckdb

import (
	"fmt"
	"strings"
	"time"
)

// piece is one table read: rows of table with ts in [lo, hi).
type piece struct {
	table  string
	lo, hi int64
}

// plan covers [start, end) with the coarsest data available: hourly rollups
// for whole hours already rolled up, 10-minute rollups for whole buckets,
// raw rows for the edges. Merging an hour of a fleet then reads a few rows
// per series and stack instead of one per profile.
func (s *Store) plan(typeID int32, start, end int64) []piece {
	var out []piece
	w := s.w
	m10wm, h1wm := w.m10.Load(), w.h1.Load()
	raw := func(lo, hi int64) {
		for h := floorTo(lo, hourMS); h < hi; h += hourMS {
			out = append(out, piece{rawTable(typeID, h), max(lo, h), min(hi, h+hourMS)})
		}
	}
	tens := func(lo, hi int64) {
		a, b := ceilTo(lo, tenMinutes), min(floorTo(hi, tenMinutes), m10wm)
		if a >= b {
			raw(lo, hi)
			return
		}
		raw(lo, a)
		for d := floorTo(a, dayMS); d < b; d += dayMS {
			out = append(out, piece{m10Table(typeID, d), max(a, d), min(b, d+dayMS)})
		}
		raw(b, hi)
	}
	a, b := ceilTo(start, hourMS), min(floorTo(end, hourMS), h1wm)
	if a >= b {
		tens(start, end)
	} else {
		tens(start, a)
		for m := monthStart(a); m < b; m = nextMonth(m) {
			out = append(out, piece{h1Table(typeID, m), max(a, m), min(b, nextMonth(m))})
		}
		tens(b, end)
	}
	// Only tables that exist: an hour without data has no partition.
	w.tablesMu.RLock()
	defer w.tablesMu.RUnlock()
	kept := out[:0]
	for _, p := range out {
		if p.lo < p.hi && w.tables[p.table] {
			kept = append(kept, p)
		}
	}
	return kept
}

const dayMS = 24 * hourMS

func ceilTo(ms, step int64) int64 {
	f := floorTo(ms, step)
	if f == ms {
		return ms
	}
	return f + step
}

func monthStart(ms int64) int64 {
	t := time.UnixMilli(ms).UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
}

func nextMonth(ms int64) int64 {
	t := time.UnixMilli(ms).UTC()
	return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
}

// unionSQL reads cols from every piece, restricted to the selected series
// (a list bound as the query's first parameter) unless all is set.
func unionSQL(pieces []piece, cols string, all bool) string {
	var b strings.Builder
	for i, p := range pieces {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		// Partitions keep seconds: a row at second t is in [lo, hi) ms
		// exactly when ceil(lo/1000) <= t < ceil(hi/1000).
		fmt.Fprintf(&b, "SELECT %s FROM %s WHERE ts >= %d AND ts < %d", cols, p.table, ceilTo(p.lo, 1000)/1000, ceilTo(p.hi, 1000)/1000)
		if !all {
			b.WriteString(" AND series_id IN (SELECT id FROM sel)")
		}
	}
	return b.String()
}
