package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// prepared is a profile mapped to ids, its values aggregated per stack and
// packed (appendPacked): all the writer has left to do is append rows.
type prepared struct {
	typeID int32
	series uint32
	ts     int64 // seconds: value partitions keep second resolution
	tsMS   int64
	durMS  int64
	scale  int64
	packed []byte
	n      int // stacks in packed
	total  int64
}

// preparedBatch is one Append's work.
type preparedBatch struct {
	key      string
	profiles []prepared
}

// txn accumulates one write transaction's rows through appenders, one per
// table. Appended rows belong to the open transaction until COMMIT.
type txn struct {
	w       *writer
	apps    map[string]*duckdb.Appender
	order   []string
	created []string
	maxTS   int64
	dict    counts // dictionary entries written by this transaction, up to
}

func newTxn(w *writer) *txn {
	return &txn{w: w, apps: map[string]*duckdb.Appender{}}
}

func (tx *txn) addBatch(ctx context.Context, b *preparedBatch, now int64) error {
	for i := range b.profiles {
		if err := tx.addProfile(ctx, &b.profiles[i]); err != nil {
			return err
		}
	}
	if b.key != "" {
		a, err := tx.appender(ctx, "batch_keys", "")
		if err != nil {
			return err
		}
		return a.AppendRow(b.key, now)
	}
	return nil
}

type target struct {
	table  string
	bucket int64 // seconds
}

func (tx *txn) addProfile(ctx context.Context, p *prepared) error {
	tx.maxTS = max(tx.maxTS, p.tsMS)
	// Rows land in the raw partition, and directly in the rollups whose
	// buckets were already rolled up (late data).
	targets := []target{{rawTable(p.typeID, p.tsMS), p.ts}}
	if p.tsMS < tx.w.m10.Load() {
		targets = append(targets, target{m10Table(p.typeID, p.tsMS), floorTo(p.tsMS, tenMinutes) / 1000})
	}
	if p.tsMS < tx.w.h1.Load() {
		targets = append(targets, target{h1Table(p.typeID, p.tsMS), floorTo(p.tsMS, hourMS) / 1000})
	}
	for _, t := range targets {
		a, err := tx.appender(ctx, t.table, partitionDDL)
		if err != nil {
			return err
		}
		if err := a.AppendRow(p.series, t.bucket, p.scale, p.packed); err != nil {
			return fmt.Errorf("append to %s: %w", t.table, err)
		}
	}
	a, err := tx.appender(ctx, "profiles", "")
	if err != nil {
		return err
	}
	return a.AppendRow(p.series, p.tsMS, p.durMS, p.scale, p.total*p.scale, int32(p.n))
}

// flush writes the dictionary entries nobody has written yet (whichever
// batch added them) and flushes every appender into the transaction.
func (tx *txn) flush(ctx context.Context) error {
	if err := tx.appendDictionary(ctx); err != nil {
		return err
	}
	for _, name := range tx.order {
		a := tx.apps[name]
		delete(tx.apps, name)
		if err := a.Close(); err != nil {
			return fmt.Errorf("flush %s: %w", name, err)
		}
	}
	return nil
}

func (tx *txn) appendDictionary(ctx context.Context) error {
	d := tx.w.s.dict
	d.mu.RLock()
	from, to := d.persisted, d.counts()
	rows := dictionaryRows(d, from, to)
	d.mu.RUnlock()
	tx.dict = to
	for _, r := range rows {
		a, err := tx.appender(ctx, r.table, "")
		if err != nil {
			return err
		}
		if err := a.AppendRow(r.row...); err != nil {
			return fmt.Errorf("append to %s: %w", r.table, err)
		}
	}
	return nil
}

type dictRow struct {
	table string
	row   []driver.Value
}

// dictionaryRows lists entries with ids in [from, to); d.mu is held.
func dictionaryRows(d *dictionary, from, to counts) []dictRow {
	var rows []dictRow
	add := func(table string, row ...driver.Value) { rows = append(rows, dictRow{table, row}) }
	for id := from.types; id < to.types; id++ {
		t := d.types[id]
		add("types", int32(id), t.Name, t.SampleType, t.SampleUnit, t.PeriodType, t.PeriodUnit)
	}
	for id := max(from.series, 1); id < to.series; id++ {
		e := d.series[id]
		add("series", uint32(id), e.typeID, encodeLabels(e.labels))
	}
	for id := max(from.functions, 1); id < to.functions; id++ {
		add("functions", uint32(id), d.functions[id].name, d.functions[id].file)
	}
	for id := max(from.mappings, 1); id < to.mappings; id++ {
		add("mappings", uint32(id), d.mappings[id].file, d.mappings[id].buildID)
	}
	for id := max(from.locations, 1); id < to.locations; id++ {
		l := d.locations[id]
		add("locations", uint32(id), l.function, l.mapping, l.line, l.inlined, l.address)
	}
	for id := max(from.stacks, 1); id < to.stacks; id++ {
		add("stacks", uint32(id), d.stacks[id].parent, d.stacks[id].location)
	}
	return rows
}

// closeAppenders discards what was appended but not flushed: closing an
// appender normally flushes, which after a rollback would write outside
// the transaction.
func (tx *txn) closeAppenders() {
	var errs []error
	for name, a := range tx.apps {
		errs = append(errs, a.Clear(), a.Close())
		delete(tx.apps, name)
	}
	_ = errors.Join(errs...)
}

// published runs after COMMIT: the transaction's effects become visible.
func (tx *txn) published() {
	w := tx.w
	w.tablesMu.Lock()
	for _, t := range tx.created {
		w.tables[t] = true
	}
	w.tablesMu.Unlock()
	d := w.s.dict
	d.mu.Lock()
	d.persisted = maxCounts(d.persisted, tx.dict)
	d.mu.Unlock()
	for {
		cur := w.maxTS.Load()
		if tx.maxTS <= cur || w.maxTS.CompareAndSwap(cur, tx.maxTS) {
			break
		}
	}
}

func maxCounts(a, b counts) counts {
	return counts{max(a.types, b.types), max(a.series, b.series), max(a.functions, b.functions),
		max(a.mappings, b.mappings), max(a.locations, b.locations), max(a.stacks, b.stacks)}
}
