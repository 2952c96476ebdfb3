package query

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/flightrec/flightrec/server/model"
)

// Order is what a top table is sorted by.
type Order string

// Orders of a top table.
const (
	BySelf  Order = "self"
	ByTotal Order = "total"
)

// ParseOrder parses "self" or "total"; "" is BySelf, as in pprof -top.
func ParseOrder(s string) (Order, error) {
	switch Order(s) {
	case "", BySelf:
		return BySelf, nil
	case ByTotal:
		return ByTotal, nil
	}
	return "", fmt.Errorf("bad order %q: want self or total", s)
}

// Top is a table of functions by cost.
type Top struct {
	Total     int64      `json:"total"` // of the whole profile, for percentages
	Count     int        `json:"count"` // functions in the profile, before the limit
	Functions []Function `json:"functions"`
}

// Function is one row of a Top table.
type Function struct {
	Name string `json:"name"`
	// Self is the value of stacks where the function is the leaf (pprof's
	// flat), Total of stacks that contain it (pprof's cum), counted once per
	// stack however often it recurses.
	Self  int64 `json:"self"`
	Total int64 `json:"total"`
}

// NewTop tabulates set's functions by display name (see FrameName), sorted
// by order, then by the other value and by name; limit > 0 keeps that many.
// Inlined frames count as functions of their own, as in pprof.
func NewTop(set *model.StackSet, order Order, limit int) *Top {
	names := newNameTable()
	frameName := names.frames(set)
	self := make([]int64, len(names.names))
	total := make([]int64, len(names.names))
	lastStack := make([]int, len(names.names)) // 1 + the last stack counted in total
	top := &Top{Total: set.Total()}
	for i, st := range set.Stacks {
		v := set.Values[i]
		if len(st) > 0 {
			self[frameName[st[0]]] += v
		}
		for _, f := range st {
			if n := frameName[f]; lastStack[n] != i+1 {
				lastStack[n] = i + 1
				total[n] += v
			}
		}
	}
	for id, name := range names.names {
		if lastStack[id] != 0 { // frames of no stack are not functions of the profile
			top.Functions = append(top.Functions, Function{Name: name, Self: self[id], Total: total[id]})
		}
	}
	top.Count = len(top.Functions)
	key := func(f Function) (int64, int64) {
		if order == ByTotal {
			return f.Total, f.Self
		}
		return f.Self, f.Total
	}
	slices.SortFunc(top.Functions, func(a, b Function) int {
		a1, a2 := key(a)
		b1, b2 := key(b)
		return cmp.Or(cmp.Compare(b1, a1), cmp.Compare(b2, a2), cmp.Compare(a.Name, b.Name))
	})
	if limit > 0 && len(top.Functions) > limit {
		top.Functions = top.Functions[:limit]
	}
	if top.Functions == nil {
		top.Functions = []Function{}
	}
	return top
}
