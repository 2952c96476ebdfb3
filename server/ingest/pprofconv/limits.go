package pprofconv

import (
	"math"
	"unicode/utf8"
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

// check rejects what Convert must not process: negative values, totals
// that overflow, and anything over the limits (the profile's consistency,
// pprof's CheckValid, was checked when it was decoded). It runs before any
// output is built, so a rejected profile has no side effects (the label
// filter, a cardinality limiter, is never consulted). Along the way it
// builds the frame table and finds each sample's stack and label set.
func (c *converter) check() error {
	t, lim := &c.t, c.lim
	if len(t.samples) > lim.MaxSamples {
		return Errorf(ErrTooLarge, "profile has %d samples, more than the limit of %d", len(t.samples), lim.MaxSamples)
	}
	if len(t.locations) > lim.MaxLocations {
		return Errorf(ErrTooLarge, "profile has %d locations, more than the limit of %d", len(t.locations), lim.MaxLocations)
	}
	if t.timeNanos < 0 || t.durationNanos < 0 {
		return Errorf(ErrMalformed, "profile has a negative time (%d) or duration (%d)", t.timeNanos, t.durationNanos)
	}
	c.frames.build(t)
	c.sampleSets = resize(c.sampleSets, len(t.samples))
	c.sampleStacks = resize(c.sampleStacks, len(t.samples))
	c.totals = resize(c.totals, len(c.names))
	frames := 0
	for i, s := range t.samples {
		n, err := c.checkSample(i, s)
		if err != nil {
			return err
		}
		// Compare before adding: the sum cannot overflow an int this way.
		if n > lim.MaxStackFrames-frames {
			return Errorf(ErrTooLarge, "profile has more than %d stack frames in all", lim.MaxStackFrames)
		}
		frames += n
		if err := c.addTotals(t.values[s.values.start:s.values.end]); err != nil {
			return err
		}
	}
	return nil
}

// addTotals sums values per type. Totals within int64 guarantee that no
// sum Convert makes (of some samples of one type) overflows.
func (c *converter) addTotals(values []int64) error {
	for j, v := range values {
		if v > math.MaxInt64-c.totals[j] {
			return Errorf(ErrMalformed, "%s values add up to more than 64 bits hold", c.sts[j].typ)
		}
		c.totals[j] += v
	}
	return nil
}

// checkSample returns how many stack frames the sample adds to the output.
func (c *converter) checkSample(i int, s sample) (int, error) {
	t, lim := &c.t, c.lim
	kept := 0
	for j, v := range t.values[s.values.start:s.values.end] {
		if v < 0 {
			return 0, Errorf(ErrMalformed, "sample %d has negative %s value %d (diff profiles are not supported)", i, c.sts[j].typ, v)
		}
		if v > 0 && c.names[j] != "" {
			kept++
		}
	}
	// Interning the stack here, where its depth is checked, walks the
	// sample's locations once for both.
	stack, depth := c.stacks.add(t, s, &c.frames, lim.MaxStackDepth)
	if stack < 0 {
		return 0, Errorf(ErrTooLarge, "sample %d has %d frames, more than the limit of %d", i, depth, lim.MaxStackDepth)
	}
	set, err := c.sets.set(t, i, s, c.opt.Labels, lim)
	if err != nil {
		return 0, err
	}
	c.sampleSets[i], c.sampleStacks[i] = set, stack
	return depth * kept, nil
}

// validString makes s valid UTF-8: labels and frames end up in JSON and
// PromQL, which cannot carry arbitrary bytes.
func validString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return toValidUTF8(s)
}
