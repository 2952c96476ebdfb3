package pyroscope

import (
	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
)

// Delta makes the sample types that sample_type_config marks cumulative
// (totals since the process started, as old clients sent heap profiles)
// per-interval: cur - prev, negative differences (a restart) counting as 0.
// Without prev those types cannot be made per-interval and are dropped
// (zeroed); their names are returned so the caller can say so. Types not
// cumulative are left as they are. pyroscope-go sends deltas already
// (godeltaprof) and no prev_profile.
func Delta(cur, prev *profile.Profile, sts map[string]SampleType) (*profile.Profile, []string, error) {
	cum := cumulative(cur, sts)
	if cum == nil {
		return cur, nil, nil
	}
	if prev == nil {
		return cur, zero(cur, cum), nil
	}
	if err := compatible(cur, prev); err != nil {
		return nil, nil, err
	}
	// Keep only the negated cumulative values of prev, then add.
	ratios := make([]float64, len(cum))
	for i, c := range cum {
		if c {
			ratios[i] = -1
		}
	}
	if err := prev.ScaleN(ratios); err != nil {
		return nil, nil, pprofconv.Errorf(pprofconv.ErrMalformed, "prev_profile: %w", err)
	}
	d, err := profile.Merge([]*profile.Profile{cur, prev})
	if err != nil {
		return nil, nil, pprofconv.Errorf(pprofconv.ErrMalformed, "prev_profile: %w", err)
	}
	d.TimeNanos, d.DurationNanos = cur.TimeNanos, cur.DurationNanos // Merge adds durations up
	for _, s := range d.Sample {
		for i, v := range s.Value {
			if cum[i] && v < 0 {
				s.Value[i] = 0
			}
		}
	}
	return d, nil, nil
}

// AnyCumulative reports whether sample_type_config marks any type
// cumulative: if not, Delta leaves every profile as it is.
func AnyCumulative(sts map[string]SampleType) bool {
	for _, st := range sts {
		if st.Cumulative {
			return true
		}
	}
	return false
}

// cumulative flags the cumulative sample types of p, nil if there are none.
func cumulative(p *profile.Profile, sts map[string]SampleType) []bool {
	var cum []bool
	for i, st := range p.SampleType {
		if sts[st.Type].Cumulative {
			if cum == nil {
				cum = make([]bool, len(p.SampleType))
			}
			cum[i] = true
		}
	}
	return cum
}

func zero(p *profile.Profile, cum []bool) []string {
	var names []string
	for i, c := range cum {
		if c {
			names = append(names, p.SampleType[i].Type)
		}
	}
	for _, s := range p.Sample {
		for i, c := range cum {
			if c {
				s.Value[i] = 0
			}
		}
	}
	return names
}

// compatible checks what profile.Merge would, without its nil dereference
// of a missing period type.
func compatible(cur, prev *profile.Profile) error {
	for _, p := range []*profile.Profile{cur, prev} {
		if p.PeriodType == nil {
			p.PeriodType = &profile.ValueType{}
		}
	}
	same := func(a, b *profile.ValueType) bool { return a.Type == b.Type && a.Unit == b.Unit }
	if !same(cur.PeriodType, prev.PeriodType) || len(cur.SampleType) != len(prev.SampleType) {
		return pprofconv.Errorf(pprofconv.ErrMalformed, "prev_profile has other sample or period types than profile")
	}
	for i := range cur.SampleType {
		if !same(cur.SampleType[i], prev.SampleType[i]) {
			return pprofconv.Errorf(pprofconv.ErrMalformed, "prev_profile has other sample types than profile")
		}
	}
	return nil
}
