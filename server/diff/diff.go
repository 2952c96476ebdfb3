// Package diff compares a baseline and a target fleet function by function
// and call path by call path, testing each share of the profile across
// instances (docs/diff.md).
package diff

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/store"
)

// Defaults of Options.
const (
	DefaultAlpha        = 0.05
	DefaultMinShare     = 0.005
	DefaultMinInstances = 3
	// DefaultPower is the power the minimum detectable effect is given at.
	DefaultPower = 0.8
)

// Options tune the comparison; zero values mean the defaults.
type Options struct {
	// Alpha is the false discovery rate: changes with q < Alpha are flagged.
	Alpha float64
	// MinShare is the floor on a function's mean share, over the instances
	// of both sides pooled, for it to be tested at all.
	MinShare float64
	// MinInstances is the fewest instances a side may have: with fewer, a
	// variance across instances means nothing and the answer is
	// inconclusive.
	MinInstances int
}

func (o *Options) defaults() {
	if o.Alpha <= 0 || o.Alpha >= 1 {
		o.Alpha = DefaultAlpha
	}
	if o.MinShare <= 0 || o.MinShare >= 1 {
		o.MinShare = DefaultMinShare
	}
	if o.MinInstances < 2 { // a variance needs two
		o.MinInstances = DefaultMinInstances
	}
}

// ErrInput marks errors of the request itself (the API's 400s).
var ErrInput = errors.New("bad diff request")

// inputError is an ErrInput saying only what is wrong.
type inputError struct{ err error }

func (e inputError) Error() string        { return e.err.Error() }
func (e inputError) Unwrap() error        { return e.err }
func (e inputError) Is(target error) bool { return target == ErrInput }

func inputf(format string, args ...any) error { return inputError{fmt.Errorf(format, args...)} }

// EmptyError says that a side matched no profiles. It is an ErrInput.
type EmptyError struct {
	Side string // "base" or "target"
}

func (e *EmptyError) Error() string        { return e.Side + ": no profiles match" }
func (e *EmptyError) Is(target error) bool { return target == ErrInput }

// Request is what to compare: two selections of one profile type, each
// over its own range, split into instances by the labels InstanceBy.
type Request struct {
	Base, Target store.Query
	// InstanceBy are the labels whose values tell instances apart. nil means
	// AutoInstance: pod where a series has one, else pid and node.
	InstanceBy []string
}

// autoBy is what the store groups by when InstanceBy is nil; newFleet (and
// summarize, for explain and bisect) then keeps pod alone where there is one.
func autoBy() []string { return []string{"pod", "pid", "node"} }

// AutoInstance describes the default instance labels in results.
const AutoInstance = "pod, else pid+node"

// Run reads both sides from st and compares them: the API's code path.
func Run(ctx context.Context, st store.Store, req Request, opts Options) (*Result, error) {
	if req.Base.Type != req.Target.Type {
		return nil, inputf("base is %s profiles and target %s: a diff compares one type", req.Base.Type, req.Target.Type)
	}
	by, auto := req.InstanceBy, req.InstanceBy == nil
	if auto {
		by = autoBy()
	}
	// The sides are independent reads: concurrently, they take the time of one.
	var base, target *store.StackTable
	var baseErr, targetErr error
	var wg sync.WaitGroup
	wg.Go(func() { base, baseErr = readSide(ctx, st, "base", req.Base, by) })
	target, targetErr = readSide(ctx, st, "target", req.Target, by)
	wg.Wait()
	if err := errors.Join(baseErr, targetErr); err != nil {
		return nil, err
	}
	nm := newNames()
	bf, err := sideFleet(base, "base", auto, nm)
	if err != nil {
		return nil, err
	}
	tf, err := sideFleet(target, "target", auto, nm)
	if err != nil {
		return nil, err
	}
	res := compare(&bf, &tf, nm, opts)
	describe(&res.Base, req.Base)
	describe(&res.Target, req.Target)
	res.InstanceBy = AutoInstance
	if !auto {
		res.InstanceBy = strings.Join(by, "+")
	}
	return res, nil
}

func describe(s *SideSummary, q store.Query) {
	s.Selector = query.Selector{Type: q.Type, Matchers: q.Matchers}.String()
	s.From, s.To = q.Start.UnixMilli(), q.End.UnixMilli()
}

// readSide merges one side per instance-label group.
func readSide(ctx context.Context, st store.Store, name string, q store.Query, by []string) (*store.StackTable, error) {
	t, err := st.MergeByTable(ctx, q, by)
	if errors.Is(err, store.ErrUnknownType) || (err == nil && t == nil) {
		t, err = &store.StackTable{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: merge by %s: %w", name, strings.Join(by, ","), err)
	}
	return t, nil
}

// sideFleet groups one side into instances; none is an EmptyError.
func sideFleet(t *store.StackTable, name string, auto bool, nm *names) (fleet, error) {
	f, err := newFleet(t, auto, nm)
	if err != nil {
		return fleet{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(f.instances) == 0 {
		return fleet{}, &EmptyError{Side: name}
	}
	return f, nil
}
