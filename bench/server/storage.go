package main

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the store's own engine, to read it after the server stopped
)

// breakdown is where the store's bytes are, read from the stopped
// server's database file.
type breakdown struct {
	BlockSize   int64
	TotalBlocks int64
	UsedBlocks  int64
	FreeBlocks  int64
	Tables      []tableSize // by kind, then name
	Meta        []string    // watermarks and compacted partitions
}

type tableSize struct {
	Name   string
	Kind   string // raw, m10, h1, dictionary, other
	Rows   int64
	Blocks int64 // distinct blocks its segments use (small tables share blocks)
	// Compression of the value columns (segments per method), for value
	// partitions.
	Compression string
}

func (t tableSize) Bytes(blockSize int64) int64 { return t.Blocks * blockSize }

func tableKind(name string) string {
	for _, k := range []string{"raw", "m10", "h1"} {
		if strings.HasPrefix(name, k+"_t") {
			return k
		}
	}
	switch name {
	case "stacks", "locations", "functions", "mappings", "series", "types":
		return "dictionary"
	}
	return "other"
}

func storageBreakdown(ctx context.Context, path string) (*breakdown, error) {
	db, err := sql.Open("duckdb", path+"?access_mode=read_only")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	b := &breakdown{}
	var name, size, walSize, mem, memLimit string
	if err := db.QueryRowContext(ctx, "SELECT database_name, database_size, block_size, total_blocks, used_blocks, free_blocks, wal_size, memory_usage, memory_limit FROM pragma_database_size()").
		Scan(&name, &size, &b.BlockSize, &b.TotalBlocks, &b.UsedBlocks, &b.FreeBlocks, &walSize, &mem, &memLimit); err != nil {
		return nil, fmt.Errorf("database size: %w", err)
	}
	rows, err := db.QueryContext(ctx, "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()")
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		t := tableSize{Name: n, Kind: tableKind(n)}
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM "%s"`, n)).Scan(&t.Rows); err != nil {
			return nil, fmt.Errorf("count %s: %w", n, err)
		}
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(DISTINCT block_id) FROM pragma_storage_info('%s') WHERE persistent AND block_id >= 0`, n)).Scan(&t.Blocks); err != nil {
			return nil, fmt.Errorf("storage of %s: %w", n, err)
		}
		if k := t.Kind; k == "raw" || k == "m10" || k == "h1" {
			crows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT column_name, compression, count(*) FROM pragma_storage_info('%s') WHERE segment_type <> 'VALIDITY' GROUP BY ALL ORDER BY 1, 3 DESC`, n))
			if err != nil {
				return nil, err
			}
			byCol := map[string][]string{}
			var cols []string
			for crows.Next() {
				var col, comp string
				var cnt int64
				if err := crows.Scan(&col, &comp, &cnt); err != nil {
					crows.Close()
					return nil, err
				}
				if _, ok := byCol[col]; !ok {
					cols = append(cols, col)
				}
				byCol[col] = append(byCol[col], fmt.Sprintf("%s×%d", comp, cnt))
			}
			crows.Close()
			var parts []string
			for _, c := range cols {
				parts = append(parts, c+": "+strings.Join(byCol[c], " "))
			}
			t.Compression = strings.Join(parts, "; ")
		}
		b.Tables = append(b.Tables, t)
	}
	order := map[string]int{"raw": 0, "m10": 1, "h1": 2, "dictionary": 3, "other": 4}
	slices.SortFunc(b.Tables, func(x, y tableSize) int {
		if c := order[x.Kind] - order[y.Kind]; c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})
	mrows, err := db.QueryContext(ctx, "SELECT key, value FROM meta WHERE key <> 'schema_version' ORDER BY 1, 2")
	if err != nil {
		return nil, err
	}
	defer mrows.Close()
	for mrows.Next() {
		var k, v string
		if err := mrows.Scan(&k, &v); err != nil {
			return nil, err
		}
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && strings.HasSuffix(k, "watermark") {
			v = time.UnixMilli(ms).UTC().Format(time.RFC3339)
		}
		b.Meta = append(b.Meta, k+"="+v)
	}
	return b, mrows.Err()
}
