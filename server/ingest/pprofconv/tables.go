package pprofconv

import (
	"fmt"
	"math"
)

// tables is a pprof profile as flat tables that refer to each other by
// index: what the protobuf decoder (wire.go) and fromProfile produce, and
// what the converter reads. Decoding fills the id fields as sent; resolve
// checks them and fills the index fields. Strings are indexes into strs,
// whose entries alias the protobuf buffer.
//
// The decoder keeps only what conversion needs, so that nothing is built
// per location or per sample beyond a few integers: numeric labels,
// mapping limits and flags, columns, start lines and the like are checked
// as pprof checks them, then dropped.
type tables struct {
	strs []string // string table; strs[0] is ""

	sampleTypes   []valueType
	periodType    valueType
	period        int64
	timeNanos     int64
	durationNanos int64

	samples []sample
	// sampleLocs holds every sample's location ids as sent, then (resolve)
	// as indexes into locations. An id over math.MaxInt32 is kept as
	// -1-i, its value in bigLocIDs[i]: real ids are small, and int32s
	// halve the memory the decoder writes and resolve rewrites.
	sampleLocs []int32
	bigLocIDs  []uint64
	values     []int64 // every sample's values
	labels     []label // every sample's string labels

	mappings  []mapping
	locations []location
	lines     []line
	functions []function

	// Where ids point: id → index+1, 0 for none, for ids up to the table's
	// length (pprof's writers number from 1); larger ids go to the maps.
	mappingIdx, functionIdx, locationIdx []int32
	sparse                               map[idKey]int32
}

// valueType is a sample or period type: string indexes.
type valueType struct{ typ, unit int64 }

// sample is one pprof sample: ranges of sampleLocs, values, labels.
type sample struct {
	locs, values, labels span
}

type span struct{ start, end int32 }

func (s span) len() int { return int(s.end - s.start) }

// label is a string label (pprof's str != 0): indexes of its key and value.
// Numeric labels are dropped: Convert ignores them.
type label struct{ key, str int64 }

type mapping struct {
	id, start, offset uint64
	file, buildID     int64
}

type location struct {
	id, mappingID, address uint64
	lines                  span  // range of lines, innermost first
	mapping                int32 // index into mappings, -1 for none (resolve)
}

type line struct {
	functionID uint64
	line       int64
	function   int32 // index into functions (resolve)
}

type function struct {
	id                         uint64
	name, systemName, filename int64
}

// idKey is an id of a table (idMapping, idFunction, idLocation).
type idKey struct {
	table uint8
	id    uint64
}

const (
	idMapping = iota
	idFunction
	idLocation
)

// reset empties t, keeping its memory.
func (t *tables) reset() {
	*t = tables{
		strs:        t.strs[:0],
		sampleTypes: t.sampleTypes[:0],
		samples:     t.samples[:0],
		sampleLocs:  t.sampleLocs[:0],
		bigLocIDs:   t.bigLocIDs[:0],
		values:      t.values[:0],
		labels:      t.labels[:0],
		mappings:    t.mappings[:0],
		locations:   t.locations[:0],
		lines:       t.lines[:0],
		functions:   t.functions[:0],
		mappingIdx:  t.mappingIdx[:0],
		functionIdx: t.functionIdx[:0],
		locationIdx: t.locationIdx[:0],
		sparse:      t.sparse,
	}
	clear(t.sparse)
}

func (t *tables) str(i int64) string { return t.strs[i] }

// resolve turns ids into indexes and rejects what pprof's CheckValid
// rejects, with its messages: samples whose value count is not the number
// of sample types, ids that are 0 or repeated, samples naming a location
// that does not exist and lines naming a function that does not. A
// location naming a mapping that does not exist has none, as in pprof.
func (t *tables) resolve() error {
	if len(t.sampleTypes) == 0 && len(t.samples) != 0 {
		return fmt.Errorf("missing sample type information")
	}
	for _, s := range t.samples {
		if n := s.values.len(); n != len(t.sampleTypes) {
			return fmt.Errorf("mismatch: sample has %d values vs. %d types", n, len(t.sampleTypes))
		}
	}
	var err error
	if t.mappingIdx, err = t.index(idMapping, t.mappingIdx, len(t.mappings), func(i int) uint64 { return t.mappings[i].id }); err != nil {
		return err
	}
	if t.functionIdx, err = t.index(idFunction, t.functionIdx, len(t.functions), func(i int) uint64 { return t.functions[i].id }); err != nil {
		return err
	}
	if t.locationIdx, err = t.index(idLocation, t.locationIdx, len(t.locations), func(i int) uint64 { return t.locations[i].id }); err != nil {
		return err
	}
	if err := t.resolveLocations(); err != nil {
		return err
	}
	return t.resolveSamples()
}

// index builds the id → index table of n entries, rejecting ids that are 0
// or repeated.
func (t *tables) index(table uint8, dense []int32, n int, id func(int) uint64) ([]int32, error) {
	names := [...]string{idMapping: "mapping", idFunction: "function", idLocation: "location"}
	dense = resize(dense, n+1)
	for i := range n {
		x := id(i)
		if x == 0 {
			return dense, fmt.Errorf("found %s with reserved ID=0", names[table])
		}
		if x < uint64(len(dense)) {
			if dense[x] != 0 {
				return dense, fmt.Errorf("multiple %ss with same id: %d", names[table], x)
			}
			dense[x] = int32(i + 1)
			continue
		}
		if t.sparse == nil {
			t.sparse = map[idKey]int32{}
		}
		k := idKey{table, x}
		if _, dup := t.sparse[k]; dup {
			return dense, fmt.Errorf("multiple %ss with same id: %d", names[table], x)
		}
		t.sparse[k] = int32(i + 1)
	}
	return dense, nil
}

// lookup returns the index of an entity by id, -1 if there is none.
func (t *tables) lookup(table uint8, dense []int32, id uint64) int32 {
	if id < uint64(len(dense)) {
		return dense[id] - 1
	}
	return t.sparse[idKey{table, id}] - 1 // a missing id reads 0
}

func (t *tables) resolveLocations() error {
	for i := range t.locations {
		l := &t.locations[i]
		l.mapping = t.lookup(idMapping, t.mappingIdx, l.mappingID)
		for j := l.lines.start; j < l.lines.end; j++ {
			ln := &t.lines[j]
			if ln.function = t.lookup(idFunction, t.functionIdx, ln.functionID); ln.function < 0 {
				return fmt.Errorf("location id: %d has a line with nil function", l.id)
			}
		}
	}
	return nil
}

func (t *tables) resolveSamples() error {
	dense := t.locationIdx
	for i, x := range t.sampleLocs {
		var li int32 = -1
		if x >= 0 && int(x) < len(dense) {
			li = dense[x] - 1
		} else if x != 0 {
			id := uint64(x)
			if x < 0 {
				id = t.bigLocIDs[-1-x]
			}
			li = t.lookup(idLocation, dense, id)
		}
		if li < 0 {
			return fmt.Errorf("sample has nil location")
		}
		t.sampleLocs[i] = li
	}
	return nil
}

// appendLocID appends a location id as sent to sampleLocs (see tables).
func (t *tables) appendLocID(id uint64) {
	if id > math.MaxInt32 {
		t.bigLocIDs = append(t.bigLocIDs, id)
		t.sampleLocs = append(t.sampleLocs, int32(-len(t.bigLocIDs)))
		return
	}
	t.sampleLocs = append(t.sampleLocs, int32(id))
}

// resize returns s with length n, zeroed, reusing its memory if it can.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}
