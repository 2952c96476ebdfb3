package duckdb

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/store"
)

// MergeByTable is MergeBy returned in columns. DuckDB aggregates each
// group's (stack, value) pairs into two lists, so a side of hundreds of
// instances is hundreds of rows rather than millions: database/sql's
// per-row cost (a driver call, boxing and conversion of every column) was
// most of the time of a diff's reads. The lists hold the stored values,
// small sample counts, and the scale is a column of the row (a group has
// one, or a few rows): the driver boxes each list element, and Go boxes
// integers below 256 without allocating.
func (s *Store) MergeByTable(ctx context.Context, q store.Query, by []string) (*store.StackTable, error) {
	out := &store.StackTable{}
	sel, ok := s.selectSeries(q.Type, q.Matchers)
	if !ok {
		return out, nil
	}
	groupOf, groups := s.groupSeries(sel.ids, by)
	pieces := s.plan(sel.typeID, q.Start.UnixMilli(), q.End.UnixMilli())
	if len(pieces) == 0 {
		return out, nil
	}
	// No GROUP BY stack in SQL: hashing millions of (group, stack) pairs
	// took DuckDB four times as long as listing the rows per group; the
	// sums are done here, per group, over dense stack indexes.
	query := "WITH sel AS (SELECT unnest(?::UINTEGER[]) AS id, unnest(?::INTEGER[]) AS g) " +
		"SELECT sel.g, p.scale, list(p.stack_id), list(p.value) FROM (" +
		unionSQL(pieces, "series_id, stack_id, value, scale", true) +
		") p JOIN sel ON p.series_id = sel.id GROUP BY sel.g, p.scale ORDER BY sel.g"
	b := &tableBuilder{d: s.dict, out: out, g: -1}
	err := scanAll(ctx, s.db, query, func(r *sqlRows) error {
		var g int32
		var scale int64
		var ids, vals []any
		if err := r.Scan(&g, &scale, &ids, &vals); err != nil {
			return err
		}
		if g < 0 || int(g) >= len(groups) {
			return fmt.Errorf("group %d of %d", g, len(groups))
		}
		if g != b.g {
			b.flush()
			b.start(g, groups[g])
		}
		return b.add(scale, ids, vals)
	}, sel.ids, groupOf)
	if err != nil {
		return nil, fmt.Errorf("merge %s by %v as a table: %w", q.Type, by, err)
	}
	b.flush()
	return out, nil
}

// tableBuilder turns the rows of MergeByTable into a StackTable. Stack
// and location ids are dense, so its indexes are slices, not maps: a side
// of a diff looks up millions of stack ids.
type tableBuilder struct {
	d   *dictionary
	out *store.StackTable
	// stackAt and frameAt hold, per stack id and location id, 1 + the
	// index in out.Stacks and out.Frames (0: not met yet); ids beyond
	// denseIDs go to the maps instead.
	stackAt, frameAt []int32
	stackMap         map[uint32]int32
	frameMap         map[uint32]int32
	// The group being built (g, -1 before the first), its rows arriving
	// one scale at a time. at is each stack's position in it, valid when
	// its stamp is the group's: a group's repeated stacks sum in place.
	g     int32
	cur   store.TableGroup
	at    []int32
	stamp []int32
	gen   int32
}

// denseIDs bounds the dense indexes (16 MiB each): a store with more
// stacks than that pays a map lookup for the rest.
const denseIDs = 1 << 22

// lookup finds id in a dense index or its map; set records it.
func lookup(dense []int32, m map[uint32]int32, id uint32) (int32, bool) {
	if id < uint32(len(dense)) {
		return dense[id] - 1, dense[id] > 0
	}
	k, ok := m[id]
	return k, ok
}

func set(dense *[]int32, m *map[uint32]int32, id uint32, k int32) {
	if id < denseIDs {
		if int(id) >= len(*dense) {
			*dense = append(*dense, make([]int32, int(id)+1-len(*dense)+len(*dense)/2)...)
		}
		(*dense)[id] = k + 1
		return
	}
	if *m == nil {
		*m = map[uint32]int32{}
	}
	(*m)[id] = k
}

// start begins group g.
func (b *tableBuilder) start(g int32, ls labels.Labels) {
	b.g, b.cur = g, store.TableGroup{Labels: ls}
	b.gen++
}

// flush adds the group being built to the table, if it has values.
func (b *tableBuilder) flush() {
	if len(b.cur.Stack) > 0 {
		b.out.Groups = append(b.out.Groups, b.cur)
	}
	b.cur = store.TableGroup{}
}

// add adds one row of the group: its lists, as the driver gives them.
func (b *tableBuilder) add(scale int64, ids, vals []any) error {
	if len(ids) != len(vals) {
		return fmt.Errorf("%d stack ids and %d values", len(ids), len(vals))
	}
	tg := &b.cur
	for i, x := range ids {
		id, ok1 := x.(uint32)
		v, ok2 := vals[i].(int64)
		if !ok1 || !ok2 {
			return fmt.Errorf("list element %d: got %T and %T, want uint32 and int64", i, x, vals[i])
		}
		v *= scale
		k := b.stack(id)
		if b.stamp[k] == b.gen {
			tg.Value[b.at[k]] += v
			continue
		}
		b.stamp[k], b.at[k] = b.gen, int32(len(tg.Stack))
		tg.Stack = append(tg.Stack, k)
		tg.Value = append(tg.Value, v)
	}
	return nil
}

// stack is the table index of a stack id, resolving it when new.
func (b *tableBuilder) stack(id uint32) int32 {
	if k, ok := lookup(b.stackAt, b.stackMap, id); ok {
		return k
	}
	k := int32(len(b.out.Stacks))
	b.out.Stacks = append(b.out.Stacks, b.path(id))
	set(&b.stackAt, &b.stackMap, id, k)
	b.at, b.stamp = append(b.at, 0), append(b.stamp, 0)
	return k
}

// path resolves a stack id into frame indexes, leaf first. The
// dictionary's lock is taken per stack, not per query: a writer may be
// waiting for it.
func (b *tableBuilder) path(id uint32) []int32 {
	d := b.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	var st []int32
	for sid := id; sid != 0 && int(sid) < len(d.stacks); {
		n := d.stacks[sid]
		fi, ok := lookup(b.frameAt, b.frameMap, n.location)
		if !ok {
			fi = int32(len(b.out.Frames))
			b.out.Frames = append(b.out.Frames, d.frame(n.location))
			set(&b.frameAt, &b.frameMap, n.location, fi)
		}
		st = append(st, fi)
		sid = n.parent
	}
	return st
}
