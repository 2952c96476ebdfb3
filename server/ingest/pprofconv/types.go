package pprofconv

import (
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
	names := make([]string, len(st))
	seen := make(map[string]bool, len(st))
	redundant := hasTimeType(st)
	for i, t := range st {
		if t == nil {
			return nil, Errorf(ErrMalformed, "invalid pprof: sample type %d is missing", i)
		}
		if redundant && t.Type == "samples" && t.Unit == "count" {
			continue
		}
		name := typeName(t.Type, hint)
		if seen[name] {
			name += "_" + SanitizeLabelName(t.Unit)
		}
		if seen[name] || seen[t.Type+"/"+t.Unit] {
			return nil, Errorf(ErrMalformed, "profile has two sample types named %s/%s", t.Type, t.Unit)
		}
		seen[t.Type+"/"+t.Unit] = true
		seen[name] = true
		names[i] = name
	}
	return names, nil
}

func hasTimeType(st []*profile.ValueType) bool {
	for _, t := range st {
		if t != nil && (t.Type == "cpu" || t.Type == "off_cpu") && t.Unit == "nanoseconds" {
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
