// Package duckdb is the embedded store: profiles in a DuckDB file, with
// deduplicated stacks, packed values in hourly partitions, rollups (docs/storage.md).
package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/flightrec/flightrec/server/store"
)

// Options tune the store.
type Options struct {
	// MemoryLimit bounds DuckDB's buffer manager, e.g. "512MB".
	MemoryLimit string
	// Threads DuckDB may use for a statement; 0 = 1 (see defaults).
	Threads int
	// Lateness is how long after a 10-minute bucket ends data for it is
	// still expected; only then is it rolled up. Later data is still
	// stored correctly, at a little more cost.
	Lateness time.Duration
	// Now is the wall clock; tests replace it.
	Now func() time.Time
	// KeyTTL is how long batch keys are remembered for idempotency.
	KeyTTL time.Duration
	// MaintainEvery runs rollups, key expiry and idle checkpoints; 0 disables the
	// background loop (tests call Maintain).
	MaintainEvery time.Duration
	Logger        *slog.Logger
}

func (o *Options) defaults() {
	if o.Threads == 0 {
		// While DuckDB's worker threads run a statement, the calling thread
		// polls for the result in a busy loop (Executor::ExecuteTask behind
		// duckdb_execute_pending): with the default of one thread per core
		// that loop was a fifth of the server's CPU during ingest, taken
		// from the cores the work needed. One thread means the caller runs
		// the work itself. Merges lose little: DuckDB only scans the
		// packed lists, which Go decodes and sums concurrently.
		o.Threads = 1
	}
	if o.MemoryLimit == "" {
		o.MemoryLimit = "512MB"
	}
	if o.Lateness == 0 {
		o.Lateness = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.KeyTTL == 0 {
		o.KeyTTL = 2 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is the DuckDB-backed store.
type Store struct {
	opts      Options
	path      string
	connector *duckdb.Connector
	db        *sql.DB     // readers
	wconn     driver.Conn // the writer's own connection
	dict      *dictionary
	w         *writer
	stop      context.CancelFunc
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

const fileName = "flightrec.duckdb"

// catalog is the name the store's file is attached as.
const catalog = "flightrec"

// rowGroupSize bounds what a checkpoint rewrites. DuckDB rewrites a row
// group that was appended to since the last checkpoint whole, and frees
// the old blocks only once the new ones are written: with the default
// 122,880 rows, a value partition's row group is about 90 MB, and the file
// kept hundreds of MB of free blocks after an hour of ingest. 16,384 rows
// of a value partition are about 12 MB.
const rowGroupSize = 16384

// Open opens (or creates) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, fileName)
	threads := ""
	if opts.Threads > 0 {
		threads = fmt.Sprintf("SET threads=%d;", opts.Threads)
	}
	// The store is attached rather than opened, for its row group size (an
	// ATTACH option only): see rowGroupSize. Every connection uses it.
	// Spilled data goes where it would for the file opened directly.
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	attach := fmt.Sprintf("SET temp_directory=%s; ATTACH IF NOT EXISTS %s AS %s (ROW_GROUP_SIZE %d); USE %s;",
		quote(path+".tmp"), quote(path), catalog, rowGroupSize, catalog)
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		// The perfect-hash aggregate trusts column statistics that a concurrent
		// append can outgrow mid-query ("statistics ... are corrupt"): stack
		// and series ids grow while readers run, so use the regular hash table.
		_, err := execer.ExecContext(context.Background(), fmt.Sprintf("SET memory_limit='%s'; SET perfect_ht_threshold=0; SET checkpoint_threshold='64MB'; %s %s", opts.MemoryLimit, threads, attach), nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{opts: opts, path: path, connector: connector, db: sql.OpenDB(connector)}
	if err := s.init(); err != nil {
		s.db.Close()
		connector.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if err := checkVersion(ctx, s.db); err != nil {
		return err
	}
	d, err := loadDictionary(ctx, s.db)
	if err != nil {
		return err
	}
	s.dict = d
	conn, err := s.connector.Connect(ctx)
	if err != nil {
		return fmt.Errorf("open writer connection: %w", err)
	}
	s.wconn = conn
	w, err := newWriter(ctx, s)
	if err != nil {
		conn.Close()
		return err
	}
	s.w = w
	bgctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.bg.Add(1)
	go func() { defer s.bg.Done(); w.run(bgctx) }()
	if s.opts.MaintainEvery > 0 {
		s.bg.Add(1)
		go func() { defer s.bg.Done(); s.maintainLoop(bgctx) }()
	}
	return nil
}

// schemaVersion changes when the on-disk layout does.
const schemaVersion = "3"

const schema = `
CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS types (id INTEGER, name VARCHAR, sample_type VARCHAR, sample_unit VARCHAR, period_type VARCHAR, period_unit VARCHAR);
CREATE TABLE IF NOT EXISTS series (id UINTEGER, type_id INTEGER, labels VARCHAR);
CREATE TABLE IF NOT EXISTS functions (id UINTEGER, name VARCHAR, file VARCHAR);
CREATE TABLE IF NOT EXISTS mappings (id UINTEGER, file VARCHAR, build_id VARCHAR);
CREATE TABLE IF NOT EXISTS locations (id UINTEGER, function_id UINTEGER, mapping_id UINTEGER, line BIGINT, inlined BOOLEAN, address UBIGINT);
CREATE TABLE IF NOT EXISTS stacks (id UINTEGER, parent UINTEGER, location_id UINTEGER);
CREATE TABLE IF NOT EXISTS profiles (series_id UINTEGER, ts BIGINT, duration_ms BIGINT, scale BIGINT, total BIGINT, n_values INTEGER);
CREATE TABLE IF NOT EXISTS batch_keys (key VARCHAR, stored_at BIGINT);
`

func checkVersion(ctx context.Context, db *sql.DB) error {
	var v string
	err := db.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'schema_version'").Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = db.ExecContext(ctx, "INSERT INTO meta VALUES ('schema_version', ?)", schemaVersion)
		return err
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	case v != schemaVersion:
		return fmt.Errorf("data directory has schema version %s, this flightrec understands %s", v, schemaVersion)
	}
	return nil
}

// Close stops background work, flushes and closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		s.bg.Wait()
		var errs []error
		if s.wconn != nil {
			errs = append(errs, s.wconn.Close())
		}
		errs = append(errs, s.db.Close(), s.connector.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
