package snapshots

import (
	"cmp"
	"math"
	"slices"

	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// Comparison sets the functions' shares of the time just before the
// trigger against just after it: "what changed when it broke".
type Comparison struct {
	Type      string           `json:"type"`
	Unit      string           `json:"unit"`
	By        string           `json:"by"` // self or total: what shares are of
	TriggerNS int64            `json:"trigger_ns"`
	Before    Span             `json:"before"`
	After     Span             `json:"after"`
	Count     int              `json:"count"` // functions in either span, before the limit
	Functions []FunctionChange `json:"functions"`
	Message   string           `json:"message,omitempty"`
}

// Span is one side of a comparison: [FromNS, ToNS), cut to the window.
type Span struct {
	FromNS int64 `json:"from_ns"`
	ToNS   int64 `json:"to_ns"`
	Total  int64 `json:"total"`
}

// FunctionChange is one function on both sides. Shares are percentages of
// each side's total, of the function's self or total value as the
// comparison's By says; Delta is AfterShare - BeforeShare, in percentage
// points, so sides of different lengths or load compare.
type FunctionChange struct {
	Name        string  `json:"name"`
	BeforeSelf  int64   `json:"before_self"`
	BeforeTotal int64   `json:"before_total"`
	AfterSelf   int64   `json:"after_self"`
	AfterTotal  int64   `json:"after_total"`
	BeforeShare float64 `json:"before_share"`
	AfterShare  float64 `json:"after_share"`
	Delta       float64 `json:"delta"`
}

// CompareOptions say what to compare: sel's type and thread, over the
// before and after nanoseconds around the trigger.
type CompareOptions struct {
	Selection     // From and To are ignored
	Before, After int64
	By            query.Order
	Limit         int // 0: all
}

// Compare builds the comparison, largest changes first.
func Compare(snap *snapshot.Snapshot, o CompareOptions) *Comparison {
	t := snap.Trigger.TimeNS
	c := &Comparison{Type: o.Type, Unit: "nanoseconds", By: string(o.By), TriggerNS: t,
		Before: Span{FromNS: max(t-o.Before, snap.StartNS), ToNS: min(t, snap.EndNS)},
		After:  Span{FromNS: max(t, snap.StartNS), ToNS: min(t+o.After, snap.EndNS)}}
	before := top(snap, o.Selection, &c.Before)
	after := top(snap, o.Selection, &c.After)
	rows := map[string]*FunctionChange{}
	row := func(name string) *FunctionChange {
		r, ok := rows[name]
		if !ok {
			r = &FunctionChange{Name: name}
			rows[name] = r
		}
		return r
	}
	for _, f := range before.Functions {
		r := row(f.Name)
		r.BeforeSelf, r.BeforeTotal = f.Self, f.Total
	}
	for _, f := range after.Functions {
		r := row(f.Name)
		r.AfterSelf, r.AfterTotal = f.Self, f.Total
	}
	c.Functions = make([]FunctionChange, 0, len(rows))
	for _, r := range rows {
		r.share(o.By, c.Before.Total, c.After.Total)
		c.Functions = append(c.Functions, *r)
	}
	slices.SortFunc(c.Functions, func(a, b FunctionChange) int {
		return cmp.Or(cmp.Compare(math.Abs(b.Delta), math.Abs(a.Delta)), cmp.Compare(a.Name, b.Name))
	})
	c.Count = len(c.Functions)
	if o.Limit > 0 && len(c.Functions) > o.Limit {
		c.Functions = c.Functions[:o.Limit]
	}
	c.Message = c.message()
	return c
}

// top tabulates the functions of one span and sets its total.
func top(snap *snapshot.Snapshot, sel Selection, sp *Span) *query.Top {
	sel.From, sel.To = sp.FromNS, sp.ToNS
	t := query.NewTop(StackSet(snap, sel), query.BySelf, 0)
	sp.Total = t.Total
	return t
}

func (r *FunctionChange) share(by query.Order, beforeTotal, afterTotal int64) {
	b, a := r.BeforeSelf, r.AfterSelf
	if by == query.ByTotal {
		b, a = r.BeforeTotal, r.AfterTotal
	}
	r.BeforeShare, r.AfterShare = percent(b, beforeTotal), percent(a, afterTotal)
	r.Delta = round2(r.AfterShare - r.BeforeShare)
}

// percent is v's share of total, to two decimals.
func percent(v, total int64) float64 {
	if total == 0 {
		return 0
	}
	return round2(100 * float64(v) / float64(total))
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// message says why a side is empty, which makes every delta meaningless.
func (c *Comparison) message() string {
	switch {
	case c.Before.Total == 0 && c.After.Total == 0:
		return "nothing on either side of the trigger in the window"
	case c.Before.Total == 0:
		return "nothing before the trigger in the window: every after share is new"
	case c.After.Total == 0:
		return "nothing after the trigger in the window"
	}
	return ""
}
