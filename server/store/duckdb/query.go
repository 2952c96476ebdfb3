package duckdb

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store"
)

// selection is the series a query reads.
type selection struct {
	typeID int32
	ids    []uint32
	all    bool // every series of the type: no filter needed
}

func (s *Store) selectSeries(typ string, ms []*labels.Matcher) (selection, bool) {
	d := s.dict
	d.mu.RLock()
	defer d.mu.RUnlock()
	typeID, ok := d.typeByName[typ]
	if !ok {
		return selection{}, false
	}
	of := d.seriesOfType[typeID]
	sel := selection{typeID: typeID}
	for _, id := range of {
		if matches(d.series[id].labels, ms) {
			sel.ids = append(sel.ids, id)
		}
	}
	sel.all = len(sel.ids) == len(of)
	return sel, len(sel.ids) > 0
}

func matches(ls labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if m.Name == model.TypeLabel {
			continue
		}
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// withSel prefixes the series list as a CTE the union refers to.
func withSel(sel selection, query string) (string, []any) {
	if sel.all {
		return query, nil
	}
	return "WITH sel AS (SELECT unnest(?::UINTEGER[]) AS id) " + query, []any{sel.ids}
}

// Merge sums each stack's values over the selected series and range.
func (s *Store) Merge(ctx context.Context, q store.Query) (*model.StackSet, error) {
	sel, ok := s.selectSeries(q.Type, q.Matchers)
	if !ok {
		return &model.StackSet{}, nil
	}
	pieces := s.plan(sel.typeID, q.Start.UnixMilli(), q.End.UnixMilli())
	if len(pieces) == 0 {
		return &model.StackSet{}, nil
	}
	query, args := withSel(sel, "SELECT stack_id, SUM(value * scale)::BIGINT FROM ("+
		unionSQL(pieces, "stack_id, value, scale", sel.all)+") GROUP BY stack_id")
	b := s.newStackBuilder()
	err := scanAll(ctx, s.db, query, func(r *sqlRows) error {
		var id uint32
		var v int64
		if err := r.Scan(&id, &v); err != nil {
			return err
		}
		b.add(id, v)
		return nil
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("merge %s: %w", q.Type, err)
	}
	return b.done(), nil
}

// MergeBy is Merge per group of by-label values.
func (s *Store) MergeBy(ctx context.Context, q store.Query, by []string) ([]store.Group, error) {
	sel, ok := s.selectSeries(q.Type, q.Matchers)
	if !ok {
		return nil, nil
	}
	groupOf, groups := s.groupSeries(sel.ids, by)
	pieces := s.plan(sel.typeID, q.Start.UnixMilli(), q.End.UnixMilli())
	if len(pieces) == 0 {
		return nil, nil
	}
	query := "WITH sel AS (SELECT unnest(?::UINTEGER[]) AS id, unnest(?::INTEGER[]) AS g) " +
		"SELECT sel.g, p.stack_id, SUM(p.value * p.scale)::BIGINT FROM (" +
		unionSQL(pieces, "series_id, stack_id, value, scale", true) +
		") p JOIN sel ON p.series_id = sel.id GROUP BY ALL"
	table := s.newStackTable()
	builders := make([]*stackBuilder, len(groups))
	for i := range builders {
		builders[i] = table.builder()
	}
	err := scanAll(ctx, s.db, query, func(r *sqlRows) error {
		var g int32
		var id uint32
		var v int64
		if err := r.Scan(&g, &id, &v); err != nil {
			return err
		}
		builders[g].add(id, v)
		return nil
	}, sel.ids, groupOf)
	if err != nil {
		return nil, fmt.Errorf("merge %s by %v: %w", q.Type, by, err)
	}
	var out []store.Group
	for i, g := range groups {
		if len(builders[i].set.Stacks) > 0 {
			out = append(out, store.Group{Labels: g, Stacks: builders[i].done()})
		}
	}
	return out, nil
}

// groupSeries assigns each series a group index by its by-label values.
func (s *Store) groupSeries(ids []uint32, by []string) ([]int32, []labels.Labels) {
	d := s.dict
	d.mu.RLock()
	defer d.mu.RUnlock()
	index := map[string]int32{}
	var groups []labels.Labels
	groupOf := make([]int32, len(ids))
	for i, id := range ids {
		ls := d.series[id].labels
		b := labels.NewScratchBuilder(len(by))
		for _, name := range by {
			if v := ls.Get(name); v != "" {
				b.Add(name, v)
			}
		}
		b.Sort()
		g := b.Labels()
		key := g.String()
		gi, ok := index[key]
		if !ok {
			gi = int32(len(groups))
			index[key] = gi
			groups = append(groups, g)
		}
		groupOf[i] = gi
	}
	return groupOf, groups
}

// stackTable resolves stack ids into frame-index paths once per query: a
// stack met again, in the same group or another, costs one map lookup, and
// the dictionary's lock is taken only for stacks not met yet (a writer may
// be waiting for it). Every StackSet it feeds shares its frame table; the
// sets are read-only, so sharing is safe, and capacity is capped so an
// append by a consumer copies.
type stackTable struct {
	s      *Store
	frames []model.Frame
	byLoc  map[uint32]int32   // location id → frame index
	paths  map[uint32][]int32 // stack id → frame indexes, leaf first; nil: no stack comes twice
}

func (s *Store) newStackTable() *stackTable {
	return &stackTable{s: s, byLoc: map[uint32]int32{}, paths: map[uint32][]int32{}}
}

func (t *stackTable) path(id uint32) []int32 {
	if p, ok := t.paths[id]; ok { // a nil map finds nothing
		return p
	}
	d := t.s.dict
	d.mu.RLock()
	var st []int32
	for sid := id; sid != 0 && int(sid) < len(d.stacks); {
		n := d.stacks[sid]
		fi, ok := t.byLoc[n.location]
		if !ok {
			fi = int32(len(t.frames))
			t.frames = append(t.frames, d.frame(n.location))
			t.byLoc[n.location] = fi
		}
		st = append(st, fi)
		sid = n.parent
	}
	d.mu.RUnlock()
	if t.paths != nil {
		t.paths[id] = st
	}
	return st
}

// stackBuilder collects one StackSet's stacks through a stackTable.
type stackBuilder struct {
	t   *stackTable
	set *model.StackSet
}

// newStackBuilder is for one set whose stack ids are distinct (a merge
// grouped by stack): nothing to remember between rows.
func (s *Store) newStackBuilder() *stackBuilder {
	t := s.newStackTable()
	t.paths = nil
	return t.builder()
}

func (t *stackTable) builder() *stackBuilder {
	return &stackBuilder{t: t, set: &model.StackSet{}}
}

func (b *stackBuilder) add(id uint32, v int64) {
	b.set.Stacks = append(b.set.Stacks, b.t.path(id))
	b.set.Values = append(b.set.Values, v)
}

// done gives the set its frames (the table's, as far as they go now).
func (b *stackBuilder) done() *model.StackSet {
	b.set.Frames = b.t.frames[:len(b.t.frames):len(b.t.frames)]
	return b.set
}

// seriesInRange narrows ids to the series with profiles in [start, end).
func (s *Store) seriesInRange(ctx context.Context, ids []uint32, start, end time.Time) ([]uint32, error) {
	query := "WITH sel AS (SELECT unnest(?::UINTEGER[]) AS id) SELECT DISTINCT series_id FROM profiles " +
		"WHERE ts >= ? AND ts < ? AND series_id IN (SELECT id FROM sel)"
	var out []uint32
	err := scanAll(ctx, s.db, query, func(r *sqlRows) error {
		var id uint32
		if err := r.Scan(&id); err != nil {
			return err
		}
		out = append(out, id)
		return nil
	}, ids, start.UnixMilli(), end.UnixMilli())
	slices.Sort(out)
	return out, err
}

// Series lists the selected series with data in range.
func (s *Store) Series(ctx context.Context, q store.Query) ([]labels.Labels, error) {
	sel, ok := s.selectSeries(q.Type, q.Matchers)
	if !ok {
		return nil, nil
	}
	ids, err := s.seriesInRange(ctx, sel.ids, q.Start, q.End)
	if err != nil {
		return nil, fmt.Errorf("series of %s: %w", q.Type, err)
	}
	d := s.dict
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]labels.Labels, len(ids))
	for i, id := range ids {
		out[i] = d.series[id].labels
	}
	return out, nil
}

// SeriesOverTime sums each series' profile totals per step.
func (s *Store) SeriesOverTime(ctx context.Context, q store.Query, step time.Duration) ([]model.Series, error) {
	if step <= 0 {
		return nil, fmt.Errorf("step %v must be positive", step)
	}
	sel, ok := s.selectSeries(q.Type, q.Matchers)
	if !ok {
		return nil, nil
	}
	start, stepMS := q.Start.UnixMilli(), step.Milliseconds()
	query, args := withSel(selection{ids: sel.ids}, fmt.Sprintf(
		"SELECT series_id, (ts - %d) // %d AS k, SUM(total)::BIGINT FROM profiles WHERE ts >= ? AND ts < ? AND series_id IN (SELECT id FROM sel) GROUP BY ALL ORDER BY 1, 2",
		start, stepMS))
	args = append(args, start, q.End.UnixMilli())
	bySeries := map[uint32]*model.Series{}
	var order []uint32
	err := scanAll(ctx, s.db, query, func(r *sqlRows) error {
		var id uint32
		var k, v int64
		if err := r.Scan(&id, &k, &v); err != nil {
			return err
		}
		sr, ok := bySeries[id]
		if !ok {
			sr = &model.Series{}
			bySeries[id] = sr
			order = append(order, id)
		}
		sr.Points = append(sr.Points, model.Point{Time: time.UnixMilli(start + k*stepMS).UTC(), Value: v})
		return nil
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("series over time of %s: %w", q.Type, err)
	}
	d := s.dict
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]model.Series, len(order))
	for i, id := range order {
		out[i] = *bySeries[id]
		out[i].Labels = d.series[id].labels
	}
	return out, nil
}

// labelSeries returns the labels of the series a label query covers.
func (s *Store) labelSeries(ctx context.Context, q store.LabelQuery) ([]labels.Labels, error) {
	d := s.dict
	d.mu.RLock()
	var ids []uint32
	for id := 1; id < len(d.series); id++ {
		e := d.series[id]
		if q.Type != "" && (int(e.typeID) >= len(d.types) || d.types[e.typeID].Name != q.Type) {
			continue
		}
		if matches(e.labels, q.Matchers) {
			ids = append(ids, uint32(id))
		}
	}
	d.mu.RUnlock()
	if len(ids) == 0 {
		return nil, nil
	}
	ids, err := s.seriesInRange(ctx, ids, q.Start, q.End)
	if err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]labels.Labels, len(ids))
	for i, id := range ids {
		out[i] = d.series[id].labels
	}
	return out, nil
}

// LabelNames lists label names of the covered series.
func (s *Store) LabelNames(ctx context.Context, q store.LabelQuery) ([]string, error) {
	series, err := s.labelSeries(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("label names: %w", err)
	}
	set := map[string]bool{}
	for _, ls := range series {
		ls.Range(func(l labels.Label) { set[l.Name] = true })
	}
	return sortedKeys(set), nil
}

// LabelValues lists values of one label over the covered series.
func (s *Store) LabelValues(ctx context.Context, name string, q store.LabelQuery) ([]string, error) {
	series, err := s.labelSeries(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("label values of %s: %w", name, err)
	}
	set := map[string]bool{}
	for _, ls := range series {
		if v := ls.Get(name); v != "" {
			set[v] = true
		}
	}
	return sortedKeys(set), nil
}

// Types lists profile types with data in range.
func (s *Store) Types(ctx context.Context, start, end time.Time) ([]model.Type, error) {
	series, err := s.labelSeriesIDs(ctx, start, end)
	if err != nil {
		return nil, fmt.Errorf("profile types: %w", err)
	}
	d := s.dict
	d.mu.RLock()
	defer d.mu.RUnlock()
	seen := map[int32]bool{}
	var out []model.Type
	for _, id := range series {
		t := d.series[id].typeID
		if !seen[t] {
			seen[t] = true
			out = append(out, d.types[t])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) labelSeriesIDs(ctx context.Context, start, end time.Time) ([]uint32, error) {
	var out []uint32
	err := scanAll(ctx, s.db, "SELECT DISTINCT series_id FROM profiles WHERE ts >= ? AND ts < ?", func(r *sqlRows) error {
		var id uint32
		if err := r.Scan(&id); err != nil {
			return err
		}
		out = append(out, id)
		return nil
	}, start.UnixMilli(), end.UnixMilli())
	return out, err
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
