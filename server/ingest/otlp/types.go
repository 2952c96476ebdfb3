package otlp

import (
	"errors"
	"fmt"
	"math"

	"github.com/flightrec/flightrec/server/model"
)

const (
	typeCPU         = "cpu"
	unitNanoseconds = "nanoseconds"
)

// profileType maps a profile's sample and period types to the model type and
// the factor that turns its values into the stored unit; see Convert.
func profileType(st, pt valueType, period int64, timeCPU bool) (model.Type, int64, error) {
	if period < 0 {
		return model.Type{}, 0, fmt.Errorf("negative period %d", period)
	}
	name := sanitizeName(st.typ)
	if name == "" {
		return model.Type{}, 0, errors.New("sample_type has no type name")
	}
	if f := timeUnitNanos(pt.unit); isSampleCount(st) && pt.typ == typeCPU && f > 0 && period > 0 && !timeCPU {
		mult, ok := mulNonNeg(period, f)
		if !ok {
			return model.Type{}, 0, fmt.Errorf("period %d %s overflows int64 nanoseconds", period, pt.unit)
		}
		typ := model.Type{Name: typeCPU, SampleType: typeCPU, SampleUnit: unitNanoseconds, PeriodType: pt.typ, PeriodUnit: pt.unit}
		return typ, mult, nil
	}
	typ := model.Type{Name: name, SampleType: st.typ, SampleUnit: st.unit, PeriodType: pt.typ, PeriodUnit: pt.unit}
	if f := timeUnitNanos(st.unit); f > 0 {
		typ.SampleUnit = unitNanoseconds
		return typ, f, nil
	}
	return typ, 1, nil
}

func isSampleCount(st valueType) bool {
	return st.typ == "samples" && st.unit == "count"
}

// timeUnitNanos returns the nanoseconds in one unit, or 0 for a unit that
// is not time.
func timeUnitNanos(unit string) int64 {
	switch unit {
	case "nanoseconds", "ns":
		return 1
	case "microseconds", "us":
		return 1e3
	case "milliseconds", "ms":
		return 1e6
	case "seconds", "s":
		return 1e9
	}
	return 0
}

// addNonNeg adds non-negative a and b, reporting overflow.
func addNonNeg(a, b int64) (int64, bool) {
	if a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}

// mulNonNeg multiplies non-negative a and b, reporting overflow.
func mulNonNeg(a, b int64) (int64, bool) {
	if a != 0 && b > math.MaxInt64/a {
		return 0, false
	}
	return a * b, true
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
