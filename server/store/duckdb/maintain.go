package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/store"
)

// Maintain rolls up closed buckets, compacts closed hours and expires
// batch keys, as of now. The background loop calls it; tests call it with
// the time they want.
func (s *Store) Maintain(ctx context.Context, now time.Time) error {
	// Event time, not wall time, closes buckets: a backfill of the past
	// hour arriving in time order closes its buckets as it goes.
	event := min(now.UnixMilli(), s.w.maxTS.Load())
	target := floorTo(event-s.opts.Lateness.Milliseconds(), tenMinutes)
	if err := s.w.submit(ctx, &task{fn: func(ctx context.Context) error { return s.w.rollup(ctx, target) }}); err != nil {
		return fmt.Errorf("roll up: %w", err)
	}
	if err := s.compactClosed(ctx); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	expire := now.Add(-s.opts.KeyTTL).UnixMilli()
	return s.w.submit(ctx, &task{fn: func(ctx context.Context) error { return s.w.expireKeys(ctx, expire) }})
}

func (s *Store) maintainLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.MaintainEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Maintain(ctx, s.opts.Now()); err != nil && ctx.Err() == nil {
				s.opts.Logger.Error("store maintenance failed", "err", err)
			}
		}
	}
}

// rollup advances the 10-minute watermark to target and the hourly one to
// the last whole hour before it, one transaction per step so that a crash
// leaves watermarks and rollup rows consistent.
func (w *writer) rollup(ctx context.Context, target int64) error {
	for {
		b := w.m10.Load()
		if b == 0 {
			b = w.firstRawHour()
			if b == 0 {
				return nil
			}
		}
		if b >= target {
			break
		}
		if next := w.nextRawHour(b); next > b+tenMinutes {
			// Nothing stored in between: move the watermark in one step.
			if err := w.jump(ctx, "m10_watermark", &w.m10, min(floorTo(next, hourMS), target)); err != nil {
				return err
			}
			continue
		}
		if err := w.rollStep(ctx, b, tenMinutes, "m10_watermark", &w.m10, w.rollTenMinutes); err != nil {
			return err
		}
	}
	for {
		h := w.h1.Load()
		if h == 0 {
			h = floorTo(w.firstRawHour(), hourMS)
			if h == 0 {
				return nil
			}
		}
		if h+hourMS > w.m10.Load() {
			return nil
		}
		if next := w.nextRawHour(h); next > h {
			if err := w.jump(ctx, "h1_watermark", &w.h1, min(next, floorTo(w.m10.Load(), hourMS))); err != nil {
				return err
			}
			continue
		}
		if err := w.rollStep(ctx, h, hourMS, "h1_watermark", &w.h1, w.rollHour); err != nil {
			return err
		}
	}
}

type atomicMS interface {
	Load() int64
	Store(int64)
}

func (w *writer) rollStep(ctx context.Context, b, step int64, key string, wm atomicMS, roll func(context.Context, int64) error) (err error) {
	if err := w.exec(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = w.exec(ctx, "ROLLBACK")
		}
	}()
	if err := roll(ctx, b); err != nil {
		return err
	}
	if err := w.setMeta(ctx, key, fmt.Sprint(b+step)); err != nil {
		return err
	}
	if err := w.exec(ctx, "COMMIT"); err != nil {
		return err
	}
	wm.Store(b + step)
	return nil
}

// rollTenMinutes aggregates raw rows of [b, b+10m) into the day's m10 tables.
func (w *writer) rollTenMinutes(ctx context.Context, b int64) error {
	for _, typeID := range w.typesWith(rawTable, b) {
		if err := w.rollChunks(ctx, typeID, rawTable(typeID, b), m10Table(typeID, b), b, tenMinutes); err != nil {
			return fmt.Errorf("roll up %s at %d: %w", rawTable(typeID, b), b, err)
		}
	}
	return nil
}

// rollChunks aggregates the rows of src in [b, b+step) into dst, one
// statement per range of rollupChunkSeries series ids, in id order: the
// aggregate's hash table and sort hold one chunk, not the fleet. Done for
// a whole 10-minute bucket of a thousand nodes at once, they took the
// server's memory past its budget while ingest went on. Each chunk scans
// the bucket again, which zone maps on ts keep to the bucket's row groups.
func (w *writer) rollChunks(ctx context.Context, typeID int32, src, dst string, b, step int64) error {
	if err := w.ensure(ctx, dst); err != nil {
		return err
	}
	bs := b / 1000 // partitions keep seconds
	for _, r := range w.seriesRanges(typeID, rollupChunkSeries) {
		q := fmt.Sprintf("INSERT INTO %s SELECT series_id, %d, stack_id, scale, SUM(value)::BIGINT FROM %s WHERE ts >= %d AND ts < %d AND series_id BETWEEN %d AND %d GROUP BY series_id, stack_id, scale ORDER BY series_id, stack_id",
			dst, bs, src, bs, bs+step/1000, r[0], r[1])
		if err := w.exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// rollupChunkSeries is how many series one rollup statement aggregates: a
// node's process sends up to a few thousand stack values per 10 minutes,
// so a chunk is a few million raw rows at most.
const rollupChunkSeries = 256

// seriesRanges splits the series ids of a type into inclusive ranges of up
// to n series each, in order. The last range is open-ended, so series
// added since are rolled up too.
func (w *writer) seriesRanges(typeID int32, n int) [][2]uint32 {
	d := w.s.dict
	d.mu.RLock()
	ids := d.seriesOfType[typeID]
	var out [][2]uint32
	for i := 0; i < len(ids); i += n {
		out = append(out, [2]uint32{ids[i], ids[min(i+n, len(ids))-1]})
	}
	d.mu.RUnlock()
	if len(out) == 0 {
		return [][2]uint32{{0, math.MaxUint32}}
	}
	out[0][0], out[len(out)-1][1] = 0, math.MaxUint32
	return out
}

// rollHour aggregates the hour's m10 rows into the month's h1 table.
func (w *writer) rollHour(ctx context.Context, h int64) error {
	for _, typeID := range w.typesWith(m10Table, h) {
		if err := w.rollChunks(ctx, typeID, m10Table(typeID, h), h1Table(typeID, h), h, hourMS); err != nil {
			return fmt.Errorf("roll up hour %d of type %d: %w", h, typeID, err)
		}
	}
	return nil
}

// typesWith lists the types that have a partition named by name at ms.
func (w *writer) typesWith(name func(int32, int64) string, ms int64) []int32 {
	d := w.s.dict
	d.mu.RLock()
	n := len(d.types)
	d.mu.RUnlock()
	w.tablesMu.RLock()
	defer w.tablesMu.RUnlock()
	var out []int32
	for t := int32(0); t < int32(n); t++ {
		if w.tables[name(t, ms)] {
			out = append(out, t)
		}
	}
	return out
}

func (w *writer) ensure(ctx context.Context, table string) error {
	w.tablesMu.RLock()
	ok := w.tables[table]
	w.tablesMu.RUnlock()
	if ok {
		return nil
	}
	if err := w.exec(ctx, fmt.Sprintf(partitionDDL, table)); err != nil {
		return fmt.Errorf("create %s: %w", table, err)
	}
	// Visible to readers before commit is harmless: an empty table.
	w.tablesMu.Lock()
	w.tables[table] = true
	w.tablesMu.Unlock()
	return nil
}

// nextRawHour is the start of the first raw partition hour that ends after
// ms (an hour with data at or after ms), or a far future time if none.
func (w *writer) nextRawHour(ms int64) int64 {
	w.tablesMu.RLock()
	defer w.tablesMu.RUnlock()
	next := int64(1 << 62)
	for name := range w.tables {
		if h, ok := rawHour(name); ok && h+hourMS > ms && h < next {
			next = h
		}
	}
	return max(next, floorTo(ms, hourMS))
}

// jump moves a watermark over a stretch without data.
func (w *writer) jump(ctx context.Context, key string, wm atomicMS, to int64) error {
	if to <= wm.Load() {
		return fmt.Errorf("watermark %s cannot move back from %d to %d", key, wm.Load(), to)
	}
	if err := w.setMeta(ctx, key, fmt.Sprint(to)); err != nil {
		return err
	}
	wm.Store(to)
	return nil
}

// firstRawHour is the start of the oldest raw partition, 0 if none.
func (w *writer) firstRawHour() int64 {
	w.tablesMu.RLock()
	defer w.tablesMu.RUnlock()
	var first int64
	for name := range w.tables {
		if ms, ok := rawHour(name); ok && (first == 0 || ms < first) {
			first = ms
		}
	}
	return first
}

// rawHour parses raw_t<type>_<YYYYMMDDHH>.
func rawHour(name string) (int64, bool) {
	if !strings.HasPrefix(name, "raw_t") {
		return 0, false
	}
	i := strings.LastIndexByte(name, '_')
	t, err := time.Parse("2006010215", name[i+1:])
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

func (w *writer) setMeta(ctx context.Context, key, value string) error {
	if err := w.exec(ctx, fmt.Sprintf("DELETE FROM meta WHERE key = '%s'", key)); err != nil {
		return err
	}
	return w.exec(ctx, fmt.Sprintf("INSERT INTO meta VALUES ('%s', '%s')", key, value))
}

func (w *writer) expireKeys(ctx context.Context, before int64) error {
	for k, at := range w.keys {
		if at < before {
			delete(w.keys, k)
		}
	}
	return w.exec(ctx, fmt.Sprintf("DELETE FROM batch_keys WHERE stored_at < %d", before))
}

// compactClosed rewrites raw partitions of hours already rolled up, sorted
// by (series, stack, time): runs of equal series and stack ids compress to
// almost nothing and a selective merge skips whole row groups.
func (s *Store) compactClosed(ctx context.Context) error {
	h1wm := s.w.h1.Load()
	var todo []string
	s.w.tablesMu.RLock()
	for name := range s.w.tables {
		if ms, ok := rawHour(name); ok && ms+hourMS <= h1wm && !s.w.compacted[name] {
			todo = append(todo, name)
		}
	}
	s.w.tablesMu.RUnlock()
	sort.Strings(todo)
	for _, name := range todo {
		if err := s.compact(ctx, name); err != nil {
			return err
		}
	}
	if len(todo) > 0 {
		_, err := s.db.ExecContext(context.WithoutCancel(ctx), "CHECKPOINT")
		return err
	}
	return nil
}

// compact sorts table into a new table on a reader connection, leaving the
// writer free, then has the writer copy rows appended meanwhile (late data,
// found by rowid) and swap the tables. The sort runs in chunks of series
// ids, in order, so its memory stays bounded by the chunk, not the hour.
func (s *Store) compact(ctx context.Context, table string) error {
	tmp := "sorted_" + table
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Statements run to completion; ctx is checked between them (see scanAll).
	dctx := context.WithoutCancel(ctx)
	if _, err := conn.ExecContext(dctx, "DROP TABLE IF EXISTS "+tmp); err != nil {
		return err
	}
	if _, err := conn.ExecContext(dctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	maxRow, chunks, err := compactionPlan(dctx, conn, table)
	if err == nil && maxRow >= 0 {
		err = sortInto(ctx, conn, table, tmp, maxRow, chunks)
	}
	if err != nil || maxRow < 0 {
		conn.ExecContext(dctx, "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(dctx, "COMMIT"); err != nil {
		return err
	}
	return s.w.submit(ctx, &task{fn: func(ctx context.Context) error { return s.w.swap(ctx, table, tmp, maxRow) }})
}

// compactionChunk bounds the rows one sort handles.
const compactionChunk = 4 << 20

// compactionPlan snapshots the table's last rowid and splits its series ids
// into ranges of about compactionChunk rows: the bounds are series ids
// where a chunk ends. maxRow is -1 for an empty table.
func compactionPlan(ctx context.Context, conn *sql.Conn, table string) (maxRow int64, bounds []uint32, err error) {
	var mr *int64
	if err := conn.QueryRowContext(ctx, "SELECT max(rowid) FROM "+table).Scan(&mr); err != nil {
		return 0, nil, fmt.Errorf("snapshot %s: %w", table, err)
	}
	if mr == nil {
		return -1, nil, nil
	}
	rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT series_id, count(*) FROM %s WHERE rowid <= %d GROUP BY series_id ORDER BY series_id", table, *mr))
	if err != nil {
		return 0, nil, fmt.Errorf("plan compaction of %s: %w", table, err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var id uint32
		var c int64
		if err := rows.Scan(&id, &c); err != nil {
			return 0, nil, err
		}
		if n += c; n >= compactionChunk {
			bounds = append(bounds, id)
			n = 0
		}
	}
	return *mr, bounds, rows.Err()
}

// sortInto writes table's rows up to maxRow into tmp, sorted by (series,
// stack, time), one series range at a time.
func sortInto(ctx context.Context, conn *sql.Conn, table, tmp string, maxRow int64, bounds []uint32) error {
	dctx := context.WithoutCancel(ctx)
	if _, err := conn.ExecContext(dctx, fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM %s LIMIT 0", tmp, table)); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	lo := int64(-1)
	for _, hi := range append(bounds, ^uint32(0)) {
		q := fmt.Sprintf("INSERT INTO %s SELECT * FROM %s WHERE rowid <= %d AND series_id > %d AND series_id <= %d ORDER BY series_id, stack_id, ts",
			tmp, table, maxRow, lo, hi)
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := conn.ExecContext(dctx, q); err != nil {
			return fmt.Errorf("sort %s: %w", table, err)
		}
		lo = int64(hi)
	}
	return nil
}

func (w *writer) swap(ctx context.Context, table, tmp string, maxRow int64) (err error) {
	if err := w.exec(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = w.exec(ctx, "ROLLBACK")
		}
	}()
	steps := []string{
		fmt.Sprintf("INSERT INTO %s SELECT * FROM %s WHERE rowid > %d", tmp, table, maxRow),
		"DROP TABLE " + table,
		fmt.Sprintf("ALTER TABLE %s RENAME TO %s", tmp, table),
		fmt.Sprintf("INSERT INTO meta VALUES ('compacted', '%s')", table),
	}
	for _, q := range steps {
		if err := w.exec(ctx, q); err != nil {
			return fmt.Errorf("swap %s: %w", table, err)
		}
	}
	if err := w.exec(ctx, "COMMIT"); err != nil {
		return err
	}
	w.compacted[table] = true
	return nil
}

// DeleteBefore drops data before t, rounded down to the hour so that raw
// rows and rollups always cover the same time.
func (s *Store) DeleteBefore(ctx context.Context, t time.Time) error {
	cut := floorTo(t.UnixMilli(), hourMS)
	return s.w.submit(ctx, &task{fn: func(ctx context.Context) error { return s.w.deleteBefore(ctx, cut) }})
}

func (w *writer) deleteBefore(ctx context.Context, cut int64) error {
	w.tablesMu.RLock()
	names := make([]string, 0, len(w.tables))
	for n := range w.tables {
		names = append(names, n)
	}
	w.tablesMu.RUnlock()
	var drop []string
	for _, name := range names {
		end, ok := partitionEnd(name)
		switch {
		case !ok:
			continue
		case end <= cut:
			drop = append(drop, name)
		default:
			if err := w.exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE ts < %d", name, cut/1000)); err != nil {
				return fmt.Errorf("trim %s: %w", name, err)
			}
		}
	}
	for _, name := range drop {
		if err := w.exec(ctx, "DROP TABLE IF EXISTS "+name); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		w.tablesMu.Lock()
		delete(w.tables, name)
		w.tablesMu.Unlock()
		delete(w.compacted, name)
		_ = w.exec(ctx, fmt.Sprintf("DELETE FROM meta WHERE key = 'compacted' AND value = '%s'", name))
	}
	if err := w.exec(ctx, fmt.Sprintf("DELETE FROM profiles WHERE ts < %d", cut)); err != nil {
		return fmt.Errorf("trim profiles: %w", err)
	}
	return nil
}

// partitionEnd returns when a partition's time span ends.
func partitionEnd(name string) (int64, bool) {
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return 0, false
	}
	suffix := name[i+1:]
	switch {
	case strings.HasPrefix(name, "raw_t"):
		t, err := time.Parse("2006010215", suffix)
		return t.Add(time.Hour).UnixMilli(), err == nil
	case strings.HasPrefix(name, "m10_t"):
		t, err := time.Parse("20060102", suffix)
		return t.AddDate(0, 0, 1).UnixMilli(), err == nil
	case strings.HasPrefix(name, "h1_t"):
		t, err := time.Parse("200601", suffix)
		return t.AddDate(0, 1, 0).UnixMilli(), err == nil
	}
	return 0, false
}

// Stats reports sizes; DiskBytes counts the database file and its WAL.
func (s *Store) Stats(ctx context.Context) (store.Stats, error) {
	var st store.Stats
	var oldest *int64
	var values *int64
	if err := s.db.QueryRowContext(context.WithoutCancel(ctx), "SELECT count(*), SUM(n_values)::BIGINT, min(ts) FROM profiles").Scan(&st.Profiles, &values, &oldest); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	if values != nil {
		st.Values = *values
	}
	if oldest != nil {
		st.OldestTime = time.UnixMilli(*oldest).UTC()
	}
	d := s.dict
	d.mu.RLock()
	st.Series, st.Stacks = int64(len(d.series)-1), int64(len(d.stacks)-1)
	d.mu.RUnlock()
	for _, p := range []string{s.path, s.path + ".wal"} {
		if fi, err := os.Stat(p); err == nil {
			st.DiskBytes += fi.Size()
		}
	}
	return st, nil
}
