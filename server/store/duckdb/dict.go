package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

// The dictionaries map what repeats (types, series, functions, mappings,
// locations, stack prefixes) to small integer ids, held in memory for
// ingest and query and persisted in tables of the same names. Id 0 is
// never used: it is the root of the stack tree.
type dictionary struct {
	mu sync.RWMutex

	types      []model.Type
	typeByName map[string]int32

	series       []seriesEntry
	seriesByHash map[uint64][]uint32
	seriesOfType map[int32][]uint32

	functions []funcKey
	funcByKey map[funcKey]uint32

	mappings []mapKey
	mapByKey map[mapKey]uint32

	locations []locKey
	locFPs    []uint64 // per location id, model.FrameFP of its frame
	locByKey  map[locKey]uint32
	// frameByKey finds a frame's location in one lookup; the three maps
	// above are how it is stored and rebuilt.
	frameByKey map[model.Frame]uint32

	stacks      []stackNode
	stackByKey  map[stackNode]uint32
	stackByHash map[uint64]uint32 // whole stacks by stackHash of their locations: one lookup per stack
	stackHashes []uint64          // per stack id, its stackHash
	// stackByFP finds a known stack from its frames' content alone, with no
	// per-frame lookup: the fingerprint chains frame fingerprints
	// (model.FrameFP, which ingest computes as it builds frames) root
	// first. A 64-bit fingerprint identifies a stack among millions with a
	// collision probability below 1e-7; that is the trade for ingest speed.
	stackByFP fpIndex
	stackFPs  []uint64 // per stack id

	// persisted counts, per table, the entries already written: ids are
	// assigned densely, so the ones from persisted on are written by the
	// writer's next commit, whichever batch added them.
	persisted counts
}

type seriesEntry struct {
	typeID int32
	labels labels.Labels
}

type funcKey struct{ name, file string }
type mapKey struct{ file, buildID string }

type locKey struct {
	function, mapping uint32
	line              int64
	inlined           bool
	address           uint64
}

// stackNode is one stack: its caller stack (parent) and its innermost
// location. Stacks sharing callers share their prefix.
type stackNode struct{ parent, location uint32 }

func newDictionary() *dictionary {
	return &dictionary{
		typeByName:   map[string]int32{},
		series:       []seriesEntry{{}},
		seriesByHash: map[uint64][]uint32{},
		seriesOfType: map[int32][]uint32{},
		functions:    []funcKey{{}},
		funcByKey:    map[funcKey]uint32{},
		mappings:     []mapKey{{}},
		mapByKey:     map[mapKey]uint32{},
		locations:    []locKey{{}},
		locFPs:       []uint64{0},
		locByKey:     map[locKey]uint32{},
		frameByKey:   map[model.Frame]uint32{},
		stacks:       []stackNode{{}},
		stackByKey:   map[stackNode]uint32{},
		stackByHash:  map[uint64]uint32{},
		stackHashes:  []uint64{0},
		stackFPs:     []uint64{0},
	}
}

// counts is the number of entries of each dictionary table.
type counts struct{ types, series, functions, mappings, locations, stacks int }

func (d *dictionary) counts() counts {
	return counts{len(d.types), len(d.series), len(d.functions), len(d.mappings), len(d.locations), len(d.stacks)}
}

// The intern functions return the id of a key, adding it if new; d.mu is
// held for writing.

func (d *dictionary) internType(t model.Type) int32 {
	if id, ok := d.typeByName[t.Name]; ok {
		return id
	}
	id := int32(len(d.types))
	d.types = append(d.types, t)
	d.typeByName[t.Name] = id
	return id
}

func (d *dictionary) internSeries(typeID int32, ls labels.Labels) uint32 {
	h := ls.Hash()
	for _, id := range d.seriesByHash[h] {
		if e := d.series[id]; e.typeID == typeID && labels.Equal(e.labels, ls) {
			return id
		}
	}
	id := uint32(len(d.series))
	d.series = append(d.series, seriesEntry{typeID: typeID, labels: ls})
	d.seriesByHash[h] = append(d.seriesByHash[h], id)
	d.seriesOfType[typeID] = append(d.seriesOfType[typeID], id)
	return id
}

func (d *dictionary) internFrame(f model.Frame) uint32 {
	fk := funcKey{f.Function, f.File}
	fid, ok := d.funcByKey[fk]
	if !ok {
		fid = uint32(len(d.functions))
		d.functions = append(d.functions, fk)
		d.funcByKey[fk] = fid
	}
	mk := mapKey{f.Mapping, f.BuildID}
	mid, ok := d.mapByKey[mk]
	if !ok {
		mid = uint32(len(d.mappings))
		d.mappings = append(d.mappings, mk)
		d.mapByKey[mk] = mid
	}
	lk := locKey{function: fid, mapping: mid, line: f.Line, inlined: f.Inlined, address: f.Address}
	lid, ok := d.locByKey[lk]
	if !ok {
		lid = uint32(len(d.locations))
		d.locations = append(d.locations, lk)
		// Computed here, not taken from ingest: a location's fingerprint
		// must follow from its content whatever a caller sent.
		d.locFPs = append(d.locFPs, model.FrameFP(f))
		d.locByKey[lk] = lid
	}
	d.frameByKey[f] = lid
	return lid
}

func (d *dictionary) internStack(parent, location uint32) uint32 {
	k := stackNode{parent, location}
	if id, ok := d.stackByKey[k]; ok {
		return id
	}
	return d.addStack(k)
}

// addStack appends a new stack node and indexes it by its hash and its
// fingerprint; d.mu is held.
func (d *dictionary) addStack(k stackNode) uint32 {
	id := uint32(len(d.stacks))
	h := stackHash(d.stackHashes[k.parent], k.location)
	fp := fpChain(d.stackFPs[k.parent], d.locFPs[k.location])
	d.stacks = append(d.stacks, k)
	d.stackHashes = append(d.stackHashes, h)
	d.stackFPs = append(d.stackFPs, fp)
	d.stackByKey[k] = id
	if _, taken := d.stackByHash[h]; !taken {
		d.stackByHash[h] = id // on a collision the first keeps the slot; stackIs checks
	}
	d.stackByFP.put(fp, id)
	return id
}

// fpChain extends a stack's fingerprint by one (callee) frame.
func fpChain(parent, frame uint64) uint64 {
	return stackHash(parent, uint32(frame)) ^ stackHash(parent+1, uint32(frame>>32))
}

// frame rebuilds a frame from its location id; d.mu is held.
func (d *dictionary) frame(loc uint32) model.Frame {
	l := d.locations[loc]
	fn, m := d.functions[l.function], d.mappings[l.mapping]
	return model.Frame{Function: fn.name, File: fn.file, Line: l.line, Inlined: l.inlined, Mapping: m.file, BuildID: m.buildID, Address: l.address}
}

func encodeLabels(ls labels.Labels) string {
	pairs := make([]string, 0, 2*ls.Len())
	ls.Range(func(l labels.Label) { pairs = append(pairs, l.Name, l.Value) })
	b, _ := json.Marshal(pairs)
	return string(b)
}

func decodeLabels(s string) (labels.Labels, error) {
	var pairs []string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil || len(pairs)%2 != 0 {
		return labels.EmptyLabels(), fmt.Errorf("bad series labels %q", s)
	}
	return labels.FromStrings(pairs...), nil
}

// loadDictionary reads every dictionary table; ids must be dense, as the
// writer assigns them.
func loadDictionary(ctx context.Context, db *sql.DB) (*dictionary, error) {
	d := newDictionary()
	loads := []struct {
		table string
		query string
		scan  func(*sql.Rows) error
	}{
		{"types", "SELECT id, name, sample_type, sample_unit, period_type, period_unit FROM types ORDER BY id", func(r *sql.Rows) error {
			var id int32
			var t model.Type
			if err := r.Scan(&id, &t.Name, &t.SampleType, &t.SampleUnit, &t.PeriodType, &t.PeriodUnit); err != nil {
				return err
			}
			return d.expect(id == d.internType(t))
		}},
		{"series", "SELECT id, type_id, labels FROM series ORDER BY id", func(r *sql.Rows) error {
			var id uint32
			var typ int32
			var enc string
			if err := r.Scan(&id, &typ, &enc); err != nil {
				return err
			}
			ls, err := decodeLabels(enc)
			if err != nil {
				return err
			}
			return d.expect(id == d.internSeries(typ, ls))
		}},
		{"functions", "SELECT id, name, file FROM functions ORDER BY id", func(r *sql.Rows) error {
			var id uint32
			var k funcKey
			if err := r.Scan(&id, &k.name, &k.file); err != nil {
				return err
			}
			d.functions = append(d.functions, k)
			d.funcByKey[k] = id
			return d.expect(int(id) == len(d.functions)-1)
		}},
		{"mappings", "SELECT id, file, build_id FROM mappings ORDER BY id", func(r *sql.Rows) error {
			var id uint32
			var k mapKey
			if err := r.Scan(&id, &k.file, &k.buildID); err != nil {
				return err
			}
			d.mappings = append(d.mappings, k)
			d.mapByKey[k] = id
			return d.expect(int(id) == len(d.mappings)-1)
		}},
		{"locations", "SELECT id, function_id, mapping_id, line, inlined, address FROM locations ORDER BY id", func(r *sql.Rows) error {
			var id uint32
			var k locKey
			if err := r.Scan(&id, &k.function, &k.mapping, &k.line, &k.inlined, &k.address); err != nil {
				return err
			}
			if int(k.function) >= len(d.functions) || int(k.mapping) >= len(d.mappings) {
				return d.expect(false)
			}
			d.locations = append(d.locations, k)
			d.locByKey[k] = id
			f := d.frame(id)
			d.locFPs = append(d.locFPs, model.FrameFP(f))
			d.frameByKey[f] = id
			return d.expect(int(id) == len(d.locations)-1)
		}},
		{"stacks", "SELECT id, parent, location_id FROM stacks ORDER BY id", func(r *sql.Rows) error {
			var id uint32
			var k stackNode
			if err := r.Scan(&id, &k.parent, &k.location); err != nil {
				return err
			}
			if int(k.parent) >= len(d.stacks) {
				return d.expect(false)
			}
			return d.expect(id == d.addStack(k))
		}},
	}
	for _, l := range loads {
		if err := scanAll(ctx, db, l.query, l.scan); err != nil {
			return nil, fmt.Errorf("load %s: %w", l.table, err)
		}
	}
	d.persisted = d.counts() // what was loaded is stored: commits write only what follows
	return d, nil
}

func (d *dictionary) expect(ok bool) error {
	if !ok {
		return fmt.Errorf("ids are not dense: the data directory is damaged")
	}
	return nil
}

// scanAll runs query and calls scan on each row. Cancelling ctx stops the
// scan between rows, never inside DuckDB: an interrupted DuckDB query can
// keep its connection's state alive after the store is closed, which leaks
// memory and makes reopening the same file spin forever in DuckDB's
// instance cache (reproduced on duckdb-go v2.10506.0).
func scanAll(ctx context.Context, db *sql.DB, query string, scan func(*sql.Rows) error, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rows, err := db.QueryContext(context.WithoutCancel(ctx), query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for n := 0; rows.Next(); n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// sqlRows is what scanAll's callbacks read.
type sqlRows = sql.Rows

func readMetaInt(ctx context.Context, db *sql.DB, key string) (int64, error) {
	var v int64
	err := db.QueryRowContext(ctx, "SELECT CAST(value AS BIGINT) FROM meta WHERE key = ?", key).Scan(&v)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	return v, nil
}
