package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// writer owns every write: one goroutine, one connection, so transactions
// never conflict and rollups see a settled picture. Concurrent Appends are
// committed together (group commit) to amortize the commit.
type writer struct {
	s     *Store
	conn  driver.Conn
	tasks chan *task

	keys     map[string]int64 // batch key → when stored (ms), for idempotency
	tables   map[string]bool  // partition tables that exist
	tablesMu sync.RWMutex     // readers list partitions too
	m10, h1  atomic.Int64     // rollup watermarks (ms): buckets before are rolled up
	maxTS    atomic.Int64     // newest profile time stored (ms)

	commits, committed atomic.Int64 // transactions and batches in them: group commit at work
	// incoming counts batches announced or being prepared, not yet queued:
	// the group being collected waits for them (collect); arrived wakes it
	// when one is queued or abandoned.
	incoming   atomic.Int64
	arrived    chan struct{}
	lastCommit time.Time // when the last group committed, and its size
	lastGroup  int
	idleSince  int64 // commits counted at the last maintenance (checkpointIfIdle)
}

type task struct {
	batch *preparedBatch
	fn    func(ctx context.Context) error // maintenance work
	done  chan error
}

func newWriter(ctx context.Context, s *Store) (*writer, error) {
	w := &writer{s: s, conn: s.wconn, tasks: make(chan *task, 256), arrived: make(chan struct{}, 1), keys: map[string]int64{},
		tables: map[string]bool{}}
	if err := w.load(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// load restores the writer's state from the database.
func (w *writer) load(ctx context.Context) error {
	db := w.s.db
	cutoff := w.s.opts.Now().Add(-w.s.opts.KeyTTL).UnixMilli()
	if err := scanAll(ctx, db, "SELECT key, stored_at FROM batch_keys WHERE stored_at >= ?", func(r *sqlRows) error {
		var k string
		var at int64
		if err := r.Scan(&k, &at); err != nil {
			return err
		}
		w.keys[k] = at
		return nil
	}, cutoff); err != nil {
		return fmt.Errorf("load batch keys: %w", err)
	}
	if err := scanAll(ctx, db, "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'raw\\_%' ESCAPE '\\' OR table_name LIKE 'm10\\_%' ESCAPE '\\' OR table_name LIKE 'h1\\_%' ESCAPE '\\'", func(r *sqlRows) error {
		var name string
		if err := r.Scan(&name); err != nil {
			return err
		}
		w.tables[name] = true
		return nil
	}); err != nil {
		return fmt.Errorf("list partitions: %w", err)
	}
	for key, dst := range map[string]*atomic.Int64{"m10_watermark": &w.m10, "h1_watermark": &w.h1} {
		v, err := readMetaInt(ctx, db, key)
		if err != nil {
			return err
		}
		dst.Store(v)
	}
	var maxTS *int64
	if err := db.QueryRowContext(ctx, "SELECT max(ts) FROM profiles").Scan(&maxTS); err != nil {
		return fmt.Errorf("read newest profile: %w", err)
	}
	if maxTS != nil {
		w.maxTS.Store(*maxTS)
	}
	return nil
}

// submit hands t to the writer and waits for its outcome.
func (w *writer) submit(ctx context.Context, t *task) error {
	if err := w.enqueue(ctx, t); err != nil {
		return err
	}
	return w.wait(ctx, t)
}

// enqueue puts t in the writer's queue, then runs queued.
func (w *writer) enqueue(ctx context.Context, t *task, queued ...func()) error {
	t.done = make(chan error, 1)
	select {
	case w.tasks <- t:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, f := range queued {
		f()
	}
	return nil
}

// wait returns the outcome of t, enqueued.
func (w *writer) wait(ctx context.Context, t *task) error {
	select {
	case err := <-t.done:
		return err
	case <-ctx.Done():
		// The task may still complete; the caller must treat the outcome as
		// unknown, which idempotency keys make safe to retry.
		return ctx.Err()
	}
}

func (w *writer) run(ctx context.Context) {
	for {
		var first *task
		select {
		case <-ctx.Done():
			w.drain(errors.New("store is closing"))
			return
		case first = <-w.tasks:
		}
		if first.fn != nil {
			first.done <- first.fn(ctx)
			continue
		}
		group, fn := w.collect(first)
		w.commitGroup(ctx, group)
		w.lastCommit, w.lastGroup = time.Now(), len(group)
		if fn != nil {
			fn.done <- fn.fn(ctx)
		}
	}
}

// maxGroup bounds the batches of one transaction.
const maxGroup = 64

// collect gathers a group of batches after first: whatever is queued, and
// those announced (Expect) or being prepared, waiting up to groupWait for
// them. Under load it also gives the senders the last commit just answered
// a moment (settle) to announce their next batch. A commit costs DuckDB
// about 0.3 ms of CPU per table appended to whatever the rows (an
// appender's flush is an INSERT parsed, planned and run), so fewer, bigger
// commits are much of the store's ingest throughput; with nothing announced and no recent
// group, a batch commits at once. A maintenance task ends the group and is
// returned to run after it.
func (w *writer) collect(first *task) ([]*task, *task) {
	group := []*task{first}
	deadline := time.Now().Add(groupWait)
	settled := w.lastCommit.Add(settle)
	if w.lastGroup <= 1 {
		settled = time.Time{}
	}
	timer := time.NewTimer(groupWait)
	defer timer.Stop()
	for len(group) < maxGroup {
		select {
		case t := <-w.tasks:
			if t.fn != nil {
				return group, t
			}
			group = append(group, t)
			continue
		default:
		}
		now := time.Now()
		wait := deadline
		if w.incoming.Load() <= 0 {
			if !now.Before(settled) {
				return group, nil
			}
			if settled.Before(wait) {
				wait = settled
			}
		}
		if !now.Before(wait) {
			return group, nil
		}
		timer.Reset(wait.Sub(now))
		select {
		case t := <-w.tasks:
			if t.fn != nil {
				return group, t
			}
			group = append(group, t)
		case <-w.arrived:
		case <-timer.C:
		}
	}
	return group, nil
}

// groupWait bounds how long a group waits for announced batches (a request
// decodes in a few milliseconds of CPU); settle is how long after a commit
// of several batches their senders have to announce their next ones.
const (
	groupWait = 10 * time.Millisecond
	settle    = 4 * time.Millisecond
)

// expect counts a batch that will be submitted soon (or abandoned); the
// returned func is called once, when it is submitted or abandoned.
func (w *writer) expect() func() {
	w.incoming.Add(1)
	return sync.OnceFunc(w.unexpect)
}

func (w *writer) unexpect() {
	w.incoming.Add(-1)
	select {
	case w.arrived <- struct{}{}:
	default: // the writer has a wake-up pending already
	}
}

func (w *writer) drain(err error) {
	for {
		select {
		case t := <-w.tasks:
			t.done <- err
		default:
			return
		}
	}
}

// commitGroup commits the group in one transaction; if that fails, each
// batch is retried alone so one bad batch cannot fail the others.
func (w *writer) commitGroup(ctx context.Context, group []*task) {
	w.commits.Add(1)
	w.committed.Add(int64(len(group)))
	err := w.commit(ctx, group)
	if err == nil || len(group) == 1 {
		for _, t := range group {
			t.done <- err
		}
		return
	}
	for _, t := range group {
		t.done <- w.commit(ctx, []*task{t})
	}
}

// exec runs one statement on the writer's connection; a cancelled ctx stops
// before the statement, never inside it (see scanAll).
func (w *writer) exec(ctx context.Context, query string, args ...driver.NamedValue) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := w.conn.(driver.ExecerContext).ExecContext(context.WithoutCancel(ctx), query, args)
	return err
}

// commit stores the batches of group in one transaction.
func (w *writer) commit(ctx context.Context, group []*task) (err error) {
	tx := newTxn(w)
	defer func() {
		if err != nil {
			// Dictionary entries stay in memory, unwritten: the next commit
			// writes them.
			tx.closeAppenders() // before ROLLBACK: closing flushes
			_ = w.exec(ctx, "ROLLBACK")
		}
	}()
	if err := w.exec(ctx, "BEGIN TRANSACTION"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	now := w.s.opts.Now().UnixMilli()
	fresh := map[string]bool{}
	for _, t := range group {
		k := t.batch.key
		if k != "" {
			if _, dup := w.keys[k]; dup || fresh[k] {
				continue
			}
			fresh[k] = true
		}
		if err := tx.addBatch(ctx, t.batch, now); err != nil {
			return err
		}
	}
	if err := tx.flush(ctx); err != nil {
		return err
	}
	if err := w.exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for k := range fresh {
		w.keys[k] = now
	}
	tx.published()
	return nil
}

// appender returns an appender for table, creating the table if needed.
func (tx *txn) appender(ctx context.Context, table, ddl string) (*duckdb.Appender, error) {
	if a, ok := tx.apps[table]; ok {
		return a, nil
	}
	w := tx.w
	w.tablesMu.RLock()
	exists := ddl == "" || w.tables[table] // "": a base table, always there
	w.tablesMu.RUnlock()
	if !exists {
		if err := w.exec(ctx, fmt.Sprintf(ddl, table)); err != nil {
			return nil, fmt.Errorf("create %s: %w", table, err)
		}
		tx.created = append(tx.created, table)
	}
	a, err := duckdb.NewAppenderFromConn(w.conn, "", table)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", table, err)
	}
	tx.apps[table] = a
	tx.order = append(tx.order, table)
	return a, nil
}

// partitionDDL makes a value partition: a row per profile (raw) or per
// series, bucket and scale (rollups), its values packed (appendPacked).
// The lists are stored as they are: a fleet's profiles are almost never
// byte-identical, so DuckDB's dictionary and FSST compression would cost
// checkpoint CPU for nothing, and on a synthetic fleet that repeats
// payloads they would flatter the store's size.
const partitionDDL = "CREATE TABLE IF NOT EXISTS %s (series_id UINTEGER, ts BIGINT, scale BIGINT, packed BLOB USING COMPRESSION uncompressed)"

// Partition names: raw data per type and hour, 10-minute rollups per type
// and day, hourly rollups per type and month (UTC).
func rawTable(typeID int32, ms int64) string {
	return fmt.Sprintf("raw_t%d_%s", typeID, time.UnixMilli(ms).UTC().Format("2006010215"))
}

func m10Table(typeID int32, ms int64) string {
	return fmt.Sprintf("m10_t%d_%s", typeID, time.UnixMilli(ms).UTC().Format("20060102"))
}

func h1Table(typeID int32, ms int64) string {
	return fmt.Sprintf("h1_t%d_%s", typeID, time.UnixMilli(ms).UTC().Format("200601"))
}

const (
	tenMinutes = int64(10 * time.Minute / time.Millisecond)
	hourMS     = int64(time.Hour / time.Millisecond)
)

func floorTo(ms, step int64) int64 {
	r := ms % step
	if r < 0 {
		r += step
	}
	return ms - r
}

// sortedStacks aggregates one profile's values by stack id, in stack order:
// sorted ids compress better and rows of one stack meet in rollups.
func sortedStacks(ids []uint32, values []int64) ([]uint32, []int64) {
	// Sorting id<<32|position keys with the ordered sort, then summing
	// runs of one id, costs a quarter of a map and a sort of ids.
	keys := make([]uint64, len(ids))
	for i, id := range ids {
		keys[i] = uint64(id)<<32 | uint64(i)
	}
	slices.Sort(keys)
	out := make([]uint32, 0, len(keys))
	vals := make([]int64, 0, len(keys))
	for _, k := range keys {
		id, v := uint32(k>>32), values[uint32(k)]
		if n := len(out); n > 0 && out[n-1] == id {
			vals[n-1] += v
			continue
		}
		out = append(out, id)
		vals = append(vals, v)
	}
	return out, vals
}
