package duckdb

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/store"
)

// MergeByTable is MergeBy returned in columns: the groups' values over one
// table of distinct stacks, so a diff of hundreds of instances resolves
// each stack once. Rows (one per profile or rollup bucket) arrive ordered
// by group and are summed here, per group, over dense stack indexes.
func (s *Store) MergeByTable(ctx context.Context, q store.Query, by []string) (*store.StackTable, error) {
	sel, ok := s.selectSeries(q.Type, q.Matchers)
	if !ok {
		return &store.StackTable{}, nil
	}
	groupOf, groups := s.groupSeries(sel.ids, by)
	pieces := s.plan(sel.typeID, q.Start.UnixMilli(), q.End.UnixMilli())
	if len(pieces) == 0 {
		return &store.StackTable{}, nil
	}
	query := "WITH sel AS (SELECT unnest(?::UINTEGER[]) AS id, unnest(?::INTEGER[]) AS g) " +
		"SELECT sel.g, p.scale, p.packed FROM (" +
		unionSQL(pieces, "series_id, scale, packed", true) +
		") p JOIN sel ON p.series_id = sel.id ORDER BY sel.g"
	t, err := s.scanPacked(ctx, query, []any{sel.ids, groupOf}, groups)
	if err != nil {
		return nil, fmt.Errorf("merge %s by %v: %w", q.Type, by, err)
	}
	return t, nil
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

// add adds one row of the group: its packed values, times scale.
func (b *tableBuilder) add(scale int64, packed []byte) error {
	tg := &b.cur
	return walkPacked(packed, scale, func(id uint32, v int64) {
		k := b.stack(id)
		if b.stamp[k] == b.gen {
			tg.Value[b.at[k]] += v
			return
		}
		b.stamp[k], b.at[k] = b.gen, int32(len(tg.Stack))
		tg.Stack = append(tg.Stack, k)
		tg.Value = append(tg.Value, v)
	})
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
