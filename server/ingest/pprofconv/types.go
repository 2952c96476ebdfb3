package pprofconv

import (
	"slices"

	"github.com/google/pprof/profile"
)

// Hint tells apart profiles that pprof alone cannot: Go's block and mutex
// profiles both have sample types contentions/count and delay/nanoseconds
// and the same period type.
type Hint string

// Hints a caller can give; any other value is ignored.
const (
	HintNone  Hint = ""
	HintBlock Hint = "block"
	HintMutex Hint = "mutex"
)

// sampleType is a pprof value type's text.
type sampleType struct{ typ, unit string }

// typeNames returns the model type name of each sample type, "" for one
// not kept:
//   - samples/count is dropped next to cpu/nanoseconds or off_cpu/nanoseconds
//     (it is the same data: cpu = samples × period);
//   - goroutine and goroutines become goroutine;
//   - contentions and delay become block_… or mutex_… with a hint;
//   - any other type keeps its name, sanitized to a metric name ("" →
//     "unknown"); this covers cpu, off_cpu, alloc_objects, alloc_space,
//     inuse_objects, inuse_space and other profilers' types.
//
// Two types with the same name are told apart by their unit (cpu_count).
func typeNames(st []*profile.ValueType, hint Hint) ([]string, error) {
	sts := make([]sampleType, len(st))
	for i, t := range st {
		if t == nil {
			return nil, Errorf(ErrMalformed, "invalid pprof: sample type %d is missing", i)
		}
		sts[i] = sampleType{t.Type, t.Unit}
	}
	return appendTypeNames(nil, sts, hint)
}

// appendTypeNames appends the names of sts to names (see typeNames).
func appendTypeNames(names []string, sts []sampleType, hint Hint) ([]string, error) {
	redundant := hasTimeType(sts)
	start := len(names)
	for _, t := range sts {
		if redundant && t.typ == "samples" && t.unit == "count" {
			names = append(names, "")
			continue
		}
		name := typeName(t.typ, hint)
		if slices.Contains(names[start:], name) {
			name += "_" + SanitizeLabelName(t.unit)
		}
		if slices.Contains(names[start:], name) || slices.Contains(sts[:len(names)-start], t) {
			return nil, Errorf(ErrMalformed, "profile has two sample types named %s/%s", t.typ, t.unit)
		}
		names = append(names, name)
	}
	return names, nil
}

func hasTimeType(sts []sampleType) bool {
	for _, t := range sts {
		if (t.typ == "cpu" || t.typ == "off_cpu") && t.unit == "nanoseconds" {
			return true
		}
	}
	return false
}

func typeName(typ string, hint Hint) string {
	switch typ {
	case "goroutine", "goroutines":
		return "goroutine"
	case "contentions", "delay":
		if hint == HintBlock || hint == HintMutex {
			return string(hint) + "_" + typ
		}
		return typ
	}
	if n := SanitizeLabelName(typ); n != "" {
		return n
	}
	return "unknown"
}
