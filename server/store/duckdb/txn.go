package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/flightrec/flightrec/server/model"
)

// txn accumulates one write transaction's rows through appenders, one per
// table. Appended rows belong to the open transaction until COMMIT.
type txn struct {
	w       *writer
	m       mark // dictionary size before the transaction
	apps    map[string]*duckdb.Appender
	order   []string
	created []string
	maxTS   int64
}

func newTxn(w *writer, m mark) *txn {
	return &txn{w: w, m: m, apps: map[string]*duckdb.Appender{}}
}

func (tx *txn) addBatch(ctx context.Context, b *model.Batch, now int64) error {
	for _, p := range b.Profiles {
		if err := tx.addProfile(ctx, p); err != nil {
			return err
		}
	}
	if b.Key != "" {
		a, err := tx.appender(ctx, "batch_keys", "")
		if err != nil {
			return err
		}
		return a.AppendRow(b.Key, now)
	}
	return nil
}

// intern maps a profile's type, series and stacks to dictionary ids.
func (tx *txn) intern(p *model.Profile) (typeID int32, series uint32, stacks []uint32) {
	d := tx.w.s.dict
	d.mu.Lock()
	defer d.mu.Unlock()
	typeID = d.internType(p.Type)
	series = d.internSeries(typeID, p.Labels)
	locs := make([]uint32, len(p.Stacks.Frames))
	stacks = make([]uint32, len(p.Stacks.Stacks))
	for i, st := range p.Stacks.Stacks {
		var parent uint32
		for j := len(st) - 1; j >= 0; j-- { // root first
			f := st[j]
			if locs[f] == 0 {
				locs[f] = d.internFrame(p.Stacks.Frames[f])
			}
			parent = d.internStack(parent, locs[f])
		}
		stacks[i] = parent
	}
	return typeID, series, stacks
}

func (tx *txn) addProfile(ctx context.Context, p *model.Profile) error {
	typeID, sid, ids := tx.intern(p)
	stackIDs, values := sortedStacks(ids, p.Stacks.Values)
	ts := p.Time.UnixMilli()
	tx.maxTS = max(tx.maxTS, ts)

	// Rows land in the raw partition, and directly in the rollups whose
	// buckets were already rolled up (late data).
	targets := []struct {
		table  string
		bucket int64
	}{{rawTable(typeID, ts), ts}}
	if ts < tx.w.m10.Load() {
		targets = append(targets, struct {
			table  string
			bucket int64
		}{m10Table(typeID, ts), floorTo(ts, tenMinutes)})
	}
	if ts < tx.w.h1.Load() {
		targets = append(targets, struct {
			table  string
			bucket int64
		}{h1Table(typeID, ts), floorTo(ts, hourMS)})
	}
	var total int64
	for _, v := range values {
		total += v
	}
	for _, t := range targets {
		a, err := tx.appender(ctx, t.table, partitionDDL)
		if err != nil {
			return err
		}
		for i, id := range stackIDs {
			if err := a.AppendRow(sid, t.bucket, id, p.Scale, values[i]); err != nil {
				return fmt.Errorf("append to %s: %w", t.table, err)
			}
		}
	}
	a, err := tx.appender(ctx, "profiles", "")
	if err != nil {
		return err
	}
	return a.AppendRow(sid, ts, p.Duration.Milliseconds(), p.Scale, total*p.Scale, int32(len(stackIDs)))
}

// flush writes the dictionary entries new in this transaction and flushes
// every appender into the transaction.
func (tx *txn) flush(ctx context.Context) error {
	if err := tx.appendDictionary(ctx); err != nil {
		return err
	}
	for _, name := range tx.order {
		if err := tx.apps[name].Close(); err != nil {
			delete(tx.apps, name)
			return fmt.Errorf("flush %s: %w", name, err)
		}
		delete(tx.apps, name)
	}
	return nil
}

func toValues(row []any) []driverValue {
	out := make([]driverValue, len(row))
	for i, v := range row {
		out[i] = v
	}
	return out
}

func (tx *txn) appendDictionary(ctx context.Context) error {
	d := tx.w.s.dict
	d.mu.RLock()
	defer d.mu.RUnlock()
	m := tx.m
	var rows []struct {
		table string
		row   []any
	}
	add := func(table string, row ...any) {
		rows = append(rows, struct {
			table string
			row   []any
		}{table, row})
	}
	for id := m.types; id < len(d.types); id++ {
		t := d.types[id]
		add("types", int32(id), t.Name, t.SampleType, t.SampleUnit, t.PeriodType, t.PeriodUnit)
	}
	for id := max(m.series, 1); id < len(d.series); id++ {
		e := d.series[id]
		add("series", uint32(id), e.typeID, encodeLabels(e.labels))
	}
	for id := max(m.functions, 1); id < len(d.functions); id++ {
		add("functions", uint32(id), d.functions[id].name, d.functions[id].file)
	}
	for id := max(m.mappings, 1); id < len(d.mappings); id++ {
		add("mappings", uint32(id), d.mappings[id].file, d.mappings[id].buildID)
	}
	for id := max(m.locations, 1); id < len(d.locations); id++ {
		l := d.locations[id]
		add("locations", uint32(id), l.function, l.mapping, l.line, l.inlined, l.address)
	}
	for id := max(m.stacks, 1); id < len(d.stacks); id++ {
		add("stacks", uint32(id), d.stacks[id].parent, d.stacks[id].location)
	}
	for _, r := range rows {
		a, err := tx.appender(ctx, r.table, "")
		if err != nil {
			return err
		}
		if err := a.AppendRow(toValues(r.row)...); err != nil {
			return fmt.Errorf("append to %s: %w", r.table, err)
		}
	}
	return nil
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
	for {
		cur := w.maxTS.Load()
		if tx.maxTS <= cur || w.maxTS.CompareAndSwap(cur, tx.maxTS) {
			break
		}
	}
}

type driverValue = driver.Value
