package duckdb

import (
	"context"
	"database/sql"
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
	query, args := withSel(sel, unionSQL(pieces, "0::INTEGER, scale, packed", sel.all))
	sums, err := s.sumPacked(ctx, query, args)
	if err != nil {
		return nil, fmt.Errorf("merge %s: %w", q.Type, err)
	}
	slices.Sort(sums.ids)
	t := &store.StackTable{}
	b := &tableBuilder{d: s.dict, out: t, g: -1}
	b.start(0, labels.EmptyLabels())
	for _, id := range sums.ids {
		b.cur.Stack = append(b.cur.Stack, b.stack(id))
		b.cur.Value = append(b.cur.Value, sums.sum[id])
	}
	b.flush()
	if len(t.Groups) == 0 {
		return &model.StackSet{}, nil
	}
	return groupSet(t, &t.Groups[0]), nil
}

// mergeDecoders is how many goroutines decode a merge's rows: with the
// one that reads them from DuckDB, enough to keep two cores busy.
const mergeDecoders = 2

// sumPacked runs query, whose rows are (any, scale, packed values), and
// sums values × scale by stack id. One goroutine reads the rows (DuckDB
// and database/sql), others decode them, each into its own sums.
func (s *Store) sumPacked(ctx context.Context, query string, args []any) (*accumulator, error) {
	s.dict.mu.RLock()
	n := len(s.dict.stacks)
	s.dict.mu.RUnlock()
	full, free := make(chan *rowChunk, mergeDecoders), make(chan *rowChunk, 2*mergeDecoders+1)
	for range cap(free) {
		free <- &rowChunk{}
	}
	sums := make([]*accumulator, mergeDecoders)
	errs := make(chan error, mergeDecoders)
	for i := range sums {
		sums[i] = new(accumulator).sized(n)
		go func(a *accumulator) {
			var err error
			for c := range full {
				start := 0
				for j, end := range c.end {
					if err == nil {
						err = walkPacked(c.buf[start:end], c.scale[j], a.add)
					}
					start = end
				}
				free <- c
			}
			errs <- err
		}(sums[i])
	}
	err := s.readChunks(ctx, query, args, full, free)
	for range sums {
		if derr := <-errs; err == nil {
			err = derr
		}
	}
	if err != nil {
		return nil, err
	}
	for _, a := range sums[1:] {
		sums[0].addAll(a)
	}
	return sums[0], nil
}

// readChunks scans query's rows (group, scale, packed) into chunks from
// free, hands each full one to full, and closes full.
func (s *Store) readChunks(ctx context.Context, query string, args []any, full chan<- *rowChunk, free <-chan *rowChunk) error {
	defer close(full)
	c := <-free
	c.reset()
	err := scanAll(ctx, s.db, query, func(r *sqlRows) error {
		var g int32
		var scale int64
		var packed sql.RawBytes
		if err := r.Scan(&g, &scale, &packed); err != nil {
			return err
		}
		if c.add(g, scale, packed) {
			full <- c
			c = <-free
			c.reset()
		}
		return nil
	}, args...)
	full <- c
	return err
}

// MergeBy is Merge per group of by-label values.
func (s *Store) MergeBy(ctx context.Context, q store.Query, by []string) ([]store.Group, error) {
	t, err := s.MergeByTable(ctx, q, by)
	if err != nil || len(t.Groups) == 0 {
		return nil, err
	}
	out := make([]store.Group, len(t.Groups))
	for i := range t.Groups {
		out[i] = store.Group{Labels: t.Groups[i].Labels, Stacks: groupSet(t, &t.Groups[i])}
	}
	return out, nil
}

// groupSet is one group of t as a StackSet. Every set of a table shares
// its frames and stack paths; they are read-only, and capacity is capped
// so an append by a consumer copies.
func groupSet(t *store.StackTable, g *store.TableGroup) *model.StackSet {
	set := &model.StackSet{Frames: t.Frames[:len(t.Frames):len(t.Frames)], Stacks: make([][]int32, len(g.Stack)), Values: g.Value}
	for i, k := range g.Stack {
		set.Stacks[i] = t.Stacks[k][:len(t.Stacks[k]):len(t.Stacks[k])]
	}
	return set
}

// scanPacked runs query, whose rows are (group index, scale, packed values)
// ordered by group, and sums them into a table of the given groups. Reading
// rows (DuckDB and database/sql) and decoding them take about the same
// time, so they run in two goroutines, handing rows over in chunks.
func (s *Store) scanPacked(ctx context.Context, query string, args []any, groups []labels.Labels) (*store.StackTable, error) {
	out := &store.StackTable{}
	b := &tableBuilder{d: s.dict, out: out, g: -1}
	full, free := make(chan *rowChunk, 2), make(chan *rowChunk, 3)
	for range 3 {
		free <- &rowChunk{}
	}
	decoded := make(chan error, 1)
	go func() {
		var err error
		for c := range full {
			if err == nil {
				err = b.addChunk(c, groups)
			}
			free <- c
		}
		decoded <- err
	}()
	err := s.readChunks(ctx, query, args, full, free)
	if derr := <-decoded; err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	b.flush()
	return out, nil
}

// rowChunk is rows of scanPacked on their way to be decoded: the packed
// lists back to back in buf.
type rowChunk struct {
	group []int32
	scale []int64
	end   []int // of each row's list in buf
	buf   []byte
}

// rowChunkBytes is about how much a chunk holds before it is handed over.
const rowChunkBytes = 1 << 20

func (c *rowChunk) reset() {
	c.group, c.scale, c.end, c.buf = c.group[:0], c.scale[:0], c.end[:0], c.buf[:0]
}

// add copies a row in and reports whether the chunk is full.
func (c *rowChunk) add(g int32, scale int64, packed []byte) bool {
	c.group, c.scale = append(c.group, g), append(c.scale, scale)
	c.buf = append(c.buf, packed...)
	c.end = append(c.end, len(c.buf))
	return len(c.buf) >= rowChunkBytes
}

// addChunk adds a chunk's rows, which continue the groups' order.
func (b *tableBuilder) addChunk(c *rowChunk, groups []labels.Labels) error {
	start := 0
	for i, g := range c.group {
		if g < 0 || int(g) >= len(groups) {
			return fmt.Errorf("group %d of %d", g, len(groups))
		}
		if g != b.g {
			if g < b.g {
				return fmt.Errorf("rows of group %d after group %d", g, b.g)
			}
			b.flush()
			b.start(g, groups[g])
		}
		if err := b.add(c.scale[i], c.buf[start:c.end[i]]); err != nil {
			return err
		}
		start = c.end[i]
	}
	return nil
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
