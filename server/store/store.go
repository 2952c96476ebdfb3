// Package store defines how profiles are kept: a narrow write side (append a
// batch) and a read side scoped by profile type, label matchers and time.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

// Query selects the series of one profile type whose labels match, over
// [Start, End).
type Query struct {
	Type     string
	Matchers []*labels.Matcher
	Start    time.Time
	End      time.Time
}

// LabelQuery narrows label names and values to series of a type (all types
// when Type is "") matching Matchers with data in [Start, End).
type LabelQuery struct {
	Type     string
	Matchers []*labels.Matcher
	Start    time.Time
	End      time.Time
}

// Stats describe what a store holds.
type Stats struct {
	Profiles   int64 // stored profiles
	Values     int64 // stored (series, time, stack) values
	Series     int64
	Stacks     int64 // distinct stacks
	DiskBytes  int64
	OldestTime time.Time
}

// ErrUnknownType is returned for queries of a profile type never stored.
var ErrUnknownType = errors.New("unknown profile type")

// Store keeps profiles. Implementations are safe for concurrent use.
type Store interface {
	// Append stores every profile of b, durably, or none of them. A batch
	// whose Key was stored before is acknowledged without being stored again.
	Append(ctx context.Context, b *model.Batch) error

	// Merge sums each stack's values over the selected series and time range.
	Merge(ctx context.Context, q Query) (*model.StackSet, error)
	// MergeBy is Merge grouped by the values of the labels in by: one stack
	// set per distinct combination (missing labels count as "").
	MergeBy(ctx context.Context, q Query, by []string) ([]Group, error)
	// MergeByTable is MergeBy in columns: the query's distinct stacks once,
	// and each group's values as indexes into them. A group of thousands of
	// stacks is two slices, not thousands of stack slices, and a reader
	// walks each distinct stack once however many groups share it.
	MergeByTable(ctx context.Context, q Query, by []string) (*StackTable, error)
	// Series lists the labels of the selected series with data in range.
	Series(ctx context.Context, q Query) ([]labels.Labels, error)
	// SeriesOverTime returns each selected series' totals per step.
	SeriesOverTime(ctx context.Context, q Query, step time.Duration) ([]model.Series, error)
	// LabelNames and LabelValues list what selectors can use.
	LabelNames(ctx context.Context, q LabelQuery) ([]string, error)
	LabelValues(ctx context.Context, name string, q LabelQuery) ([]string, error)
	// Types lists the profile types with data in [start, end).
	Types(ctx context.Context, start, end time.Time) ([]model.Type, error)

	// DeleteBefore drops data older than t (retention).
	DeleteBefore(ctx context.Context, t time.Time) error
	Stats(ctx context.Context) (Stats, error)
	Close() error
}

// Group is one MergeBy result.
type Group struct {
	Labels labels.Labels // the by-labels and their values
	Stacks *model.StackSet
}

// StackTable is what MergeByTable returns.
type StackTable struct {
	Frames []model.Frame
	Stacks [][]int32 // distinct stacks, leaf first, as indexes into Frames
	Groups []TableGroup
}

// TableGroup is one group of a StackTable: the by-labels and their values,
// and the group's merged values by stack. Groups with no values are left
// out, as in MergeBy.
type TableGroup struct {
	Labels labels.Labels
	Stack  []int32 // indexes into StackTable.Stacks, distinct
	Value  []int64 // parallel to Stack
}
