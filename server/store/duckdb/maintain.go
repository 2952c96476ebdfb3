package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/flightrec/flightrec/server/store"
)

// Maintain rolls up closed buckets and expires batch keys, as of now. The background loop calls it; tests call it with
// the time they want.
func (s *Store) Maintain(ctx context.Context, now time.Time) error {
	// Event time, not wall time, closes buckets: a backfill of the past
	// hour arriving in time order closes its buckets as it goes.
	event := min(now.UnixMilli(), s.w.maxTS.Load())
	target := floorTo(event-s.opts.Lateness.Milliseconds(), tenMinutes)
	if err := s.w.submit(ctx, &task{fn: func(ctx context.Context) error { return s.w.rollup(ctx, target) }}); err != nil {
		return fmt.Errorf("roll up: %w", err)
	}
	expire := now.Add(-s.opts.KeyTTL).UnixMilli()
	if err := s.w.submit(ctx, &task{fn: func(ctx context.Context) error { return s.w.expireKeys(ctx, expire) }}); err != nil {
		return err
	}
	return s.w.submit(ctx, &task{fn: s.w.checkpointIfIdle})
}

// checkpointIfIdle folds the WAL into the database file once no batch was
// committed since the last maintenance. DuckDB checkpoints by itself only
// when the WAL reaches checkpoint_threshold (64 MB), so a server whose
// ingest paused would keep that much log on disk, replayed at every start.
// A checkpoint that meets a running query fails; the next maintenance
// tries again.
func (w *writer) checkpointIfIdle(ctx context.Context) error {
	n := w.commits.Load()
	if w.idleSince != n {
		w.idleSince = n
		return nil
	}
	if fi, err := os.Stat(w.s.path + ".wal"); err != nil || fi.Size() == 0 {
		return nil
	}
	if err := w.exec(ctx, "CHECKPOINT"); err != nil {
		w.s.opts.Logger.Debug("idle checkpoint postponed", "err", err)
	}
	return nil
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

// rollChunks aggregates the rows of src in [b, b+step) into dst: one row
// per series and scale, whose packed values are the sums of its rows'.
// It reads one range of rollupChunkSeries series ids at a time, in id
// order, so DuckDB sorts a chunk of rows, not a fleet's bucket; each range
// scans the bucket again, which zone maps on ts keep to its row groups.
func (w *writer) rollChunks(ctx context.Context, typeID int32, src, dst string, b, step int64) error {
	if err := w.ensure(ctx, dst); err != nil {
		return err
	}
	bs := b / 1000 // partitions keep seconds
	var acc accumulator
	for _, r := range w.seriesRanges(typeID, rollupChunkSeries) {
		q := fmt.Sprintf("SELECT series_id, scale, packed FROM %s WHERE ts >= %d AND ts < %d AND series_id BETWEEN %d AND %d ORDER BY series_id, scale",
			src, bs, bs+step/1000, r[0], r[1])
		rows, err := w.sumRows(ctx, q, &acc)
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		if err := w.appendRolled(dst, bs, rows); err != nil {
			return err
		}
	}
	return nil
}

// rolled is one rollup row.
type rolled struct {
	series uint32
	scale  int64
	packed []byte
}

// sumRows runs q on the writer's connection, whose rows are (series,
// scale, packed) ordered by series and scale, and sums each run of equal
// (series, scale).
func (w *writer) sumRows(ctx context.Context, q string, acc *accumulator) ([]rolled, error) {
	rows, err := w.conn.(driver.QueryerContext).QueryContext(context.WithoutCancel(ctx), q, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rolled
	var cur rolled
	dest := make([]driver.Value, 3)
	for {
		err := rows.Next(dest)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		series, ok1 := dest[0].(uint32)
		scale, ok2 := dest[1].(int64)
		packed, ok3 := dest[2].([]byte)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("row types %T, %T, %T", dest[0], dest[1], dest[2])
		}
		if !acc.empty() && (series != cur.series || scale != cur.scale) {
			out = append(out, rolled{cur.series, cur.scale, acc.packAndReset(nil)})
		}
		cur.series, cur.scale = series, scale
		if err := unpack(packed, acc.add); err != nil {
			return nil, err
		}
	}
	if !acc.empty() {
		out = append(out, rolled{cur.series, cur.scale, acc.packAndReset(nil)})
	}
	return out, nil
}

// appendRolled appends rows to dst at bucket bs, in the open transaction.
func (w *writer) appendRolled(dst string, bs int64, rows []rolled) error {
	if len(rows) == 0 {
		return nil
	}
	a, err := duckdb.NewAppenderFromConn(w.conn, "", dst)
	if err != nil {
		return fmt.Errorf("append to %s: %w", dst, err)
	}
	for _, r := range rows {
		if err := a.AppendRow(r.series, bs, r.scale, r.packed); err != nil {
			a.Clear()
			a.Close()
			return fmt.Errorf("append to %s: %w", dst, err)
		}
	}
	if err := a.Close(); err != nil {
		return fmt.Errorf("append to %s: %w", dst, err)
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
