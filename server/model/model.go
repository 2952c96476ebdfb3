// Package model is the server's normalized form of profiling data: what
// ingest produces from any wire format, what stores keep, what queries return.
package model

import (
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Type describes what a profile's values measure. Name is what selectors
// use: cpu{service="api"}.
type Type struct {
	Name       string // cpu, off_cpu, alloc_space, inuse_objects, ...
	SampleType string // pprof sample type, e.g. "cpu"
	SampleUnit string // e.g. "nanoseconds", "bytes", "count"
	PeriodType string // pprof period type, e.g. "cpu"
	PeriodUnit string
}

// Frame is one function call in a stack. Inlined calls are frames of their
// own, marked Inlined (inlined into the next frame, its caller).
type Frame struct {
	Function string // "" when unsymbolized
	File     string
	Line     int64
	Inlined  bool
	Mapping  string // object file ("/usr/lib/libc.so.6", "[kernel.kallsyms]"), "" if unknown
	BuildID  string
	Address  uint64 // object-relative address; kept only for unsymbolized frames
}

// Label names with special meaning.
const (
	// TypeLabel is the selector's metric name: the profile type.
	TypeLabel = labels.MetricName
)

// StackSet holds stacks over a shared frame table: the form of one
// profile's samples and of a merge result.
type StackSet struct {
	Frames []Frame
	Stacks [][]int32 // indexes into Frames, leaf first
	Values []int64   // parallel to Stacks
	// FrameFPs, when its length is that of Frames, holds FrameFP of each
	// frame, computed by whoever built the frames more cheaply than a
	// store could (ingest); stores use it instead of hashing every frame
	// again. It is a cache: leave it nil, and drop it when changing Frames.
	FrameFPs []uint64
}

// Total sums the values.
func (s *StackSet) Total() int64 {
	var t int64
	for _, v := range s.Values {
		t += v
	}
	return t
}

// Validate checks that every index is in range.
func (s *StackSet) Validate() error {
	if len(s.Stacks) != len(s.Values) {
		return fmt.Errorf("%d stacks but %d values", len(s.Stacks), len(s.Values))
	}
	for i, st := range s.Stacks {
		for _, f := range st {
			if f < 0 || int(f) >= len(s.Frames) {
				return fmt.Errorf("stack %d references frame %d of %d", i, f, len(s.Frames))
			}
		}
	}
	return nil
}

// Profile is the samples of one series and type over one interval: the
// unit of storage. Values are stored as given times Scale (e.g. sample
// counts times the sampling period for CPU), so that stores keep small
// integers.
type Profile struct {
	Type     Type
	Labels   labels.Labels // series labels, sorted, without TypeLabel
	Time     time.Time     // start of the interval
	Duration time.Duration
	Scale    int64 // each stored value means Value*Scale in Type.SampleUnit; >= 1
	Stacks   StackSet
}

// Batch is what one ingest request becomes: stored whole or not at all.
//
// Its strings may alias the decoder's buffers: they are valid only until
// Store.Append returns, and a store copies what it keeps.
type Batch struct {
	Profiles []*Profile
	// Key makes the batch idempotent: a batch with a key already stored is
	// acknowledged without being stored again. "" disables the check.
	Key string
}

// Point is one step of a series over time.
type Point struct {
	Time  time.Time
	Value int64 // sum of Value*Scale over the step
}

// Series is one labelled time series of totals.
type Series struct {
	Labels labels.Labels
	Points []Point
}
