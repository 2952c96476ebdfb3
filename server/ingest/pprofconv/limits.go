package pprofconv

import (
	"math"
	"unicode/utf8"

	"github.com/google/pprof/profile"
)

// Limits bound what one profile may cost. A zero field takes its default.
type Limits struct {
	MaxSamples      int // pprof samples; default 500 000
	MaxLocations    int // pprof locations; default 1 000 000
	MaxStackDepth   int // frames of one stack, inlined frames included; default 4096
	MaxStackFrames  int // frames summed over every stack of every type; default 32 Mi (128 MiB of indexes)
	MaxSampleLabels int // string labels of one sample; default 64
	MaxLabelName    int // bytes of a label name; default 256
	MaxLabelValue   int // bytes of a label value; default 1 KiB
}

// DefaultLimits are generous for real profilers (Go's runtime/pprof stops
// at 128 frames, async-profiler at 2048) and bound a hostile profile's cost.
func DefaultLimits() Limits {
	return Limits{
		MaxSamples:      500_000,
		MaxLocations:    1_000_000,
		MaxStackDepth:   4096,
		MaxStackFrames:  32 << 20,
		MaxSampleLabels: 64,
		MaxLabelName:    256,
		MaxLabelValue:   1 << 10,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&l.MaxSamples, d.MaxSamples)
	pick(&l.MaxLocations, d.MaxLocations)
	pick(&l.MaxStackDepth, d.MaxStackDepth)
	pick(&l.MaxStackFrames, d.MaxStackFrames)
	pick(&l.MaxSampleLabels, d.MaxSampleLabels)
	pick(&l.MaxLabelName, d.MaxLabelName)
	pick(&l.MaxLabelValue, d.MaxLabelValue)
	return l
}

// check rejects what Convert must not process: inconsistent profiles,
// negative values, totals that overflow, and anything over the limits. It
// runs before any output is built, so a rejected profile has no side
// effects (the label filter, a cardinality limiter, is never consulted).
func check(p *profile.Profile, types []string, lim Limits) error {
	if err := p.CheckValid(); err != nil {
		return Errorf(ErrMalformed, "invalid pprof: %w", err)
	}
	if len(p.Sample) > lim.MaxSamples {
		return Errorf(ErrTooLarge, "profile has %d samples, more than the limit of %d", len(p.Sample), lim.MaxSamples)
	}
	if len(p.Location) > lim.MaxLocations {
		return Errorf(ErrTooLarge, "profile has %d locations, more than the limit of %d", len(p.Location), lim.MaxLocations)
	}
	if p.TimeNanos < 0 || p.DurationNanos < 0 {
		return Errorf(ErrMalformed, "profile has a negative time (%d) or duration (%d)", p.TimeNanos, p.DurationNanos)
	}
	frames := 0
	totals := make([]int64, len(types))
	for i, s := range p.Sample {
		n, err := checkSample(i, s, types, p.SampleType, lim)
		if err != nil {
			return err
		}
		// Compare before adding: the sum cannot overflow an int this way.
		if n > lim.MaxStackFrames-frames {
			return Errorf(ErrTooLarge, "profile has more than %d stack frames in all", lim.MaxStackFrames)
		}
		frames += n
		if err := addTotals(totals, s.Value, p.SampleType); err != nil {
			return err
		}
	}
	return nil
}

// addTotals sums values per type. Totals within int64 guarantee that no
// sum Convert makes (of some samples of one type) overflows.
func addTotals(totals, values []int64, st []*profile.ValueType) error {
	for j, v := range values {
		if v > math.MaxInt64-totals[j] {
			return Errorf(ErrMalformed, "%s values add up to more than 64 bits hold", st[j].Type)
		}
		totals[j] += v
	}
	return nil
}

// checkSample returns how many stack frames the sample adds to the output.
func checkSample(i int, s *profile.Sample, types []string, st []*profile.ValueType, lim Limits) (int, error) {
	kept := 0
	for j, v := range s.Value {
		if v < 0 {
			return 0, Errorf(ErrMalformed, "sample %d has negative %s value %d (diff profiles are not supported)", i, st[j].Type, v)
		}
		if v > 0 && types[j] != "" {
			kept++
		}
	}
	depth := 0
	for _, loc := range s.Location {
		depth += max(1, len(loc.Line))
	}
	if depth > lim.MaxStackDepth {
		return 0, Errorf(ErrTooLarge, "sample %d has %d frames, more than the limit of %d", i, depth, lim.MaxStackDepth)
	}
	if err := checkLabels(i, s, lim); err != nil {
		return 0, err
	}
	return depth * kept, nil
}

func checkLabels(i int, s *profile.Sample, lim Limits) error {
	if len(s.Label) > lim.MaxSampleLabels {
		return Errorf(ErrBadLabels, "sample %d has %d labels, more than the limit of %d", i, len(s.Label), lim.MaxSampleLabels)
	}
	for k, vs := range s.Label {
		if len(k) > lim.MaxLabelName {
			return Errorf(ErrBadLabels, "sample %d: label name %.40q... is longer than %d bytes", i, k, lim.MaxLabelName)
		}
		if len(vs) > 0 && len(vs[0]) > lim.MaxLabelValue {
			return Errorf(ErrBadLabels, "sample %d: value of label %q is longer than %s", i, k, FormatBytes(int64(lim.MaxLabelValue)))
		}
	}
	return nil
}

// validString makes s valid UTF-8: labels and frames end up in JSON and
// PromQL, which cannot carry arbitrary bytes.
func validString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return toValidUTF8(s)
}
