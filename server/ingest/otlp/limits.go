package otlp

import (
	"errors"
	"fmt"
)

// ErrLimit marks a request that is well-formed but exceeds one of the Limits.
// HTTP answers it with 413, gRPC with ResourceExhausted.
var ErrLimit = errors.New("limit exceeded")

// Limits bound what one request may turn into, so that a small request cannot
// expand into an unbounded batch. A zero field means its default.
type Limits struct {
	// MaxProfiles bounds the model profiles (series × type × interval) of one
	// request. Every distinct label set is a profile, hence the need.
	MaxProfiles int
	// MaxStackDepth bounds the frames of one stack, inlined frames included.
	MaxStackDepth int
	// MaxFrameRefs bounds the sum of the lengths of all distinct stacks of
	// all profiles: the size of the batch's stack tables.
	MaxFrameRefs int
	// MaxLabels bounds the labels of one series.
	MaxLabels int
	// MaxLabelValueLen bounds a label value, in bytes.
	MaxLabelValueLen int
	// IgnoreAttributes are attribute keys never turned into labels. nil
	// means DefaultIgnoredAttributes; an empty non-nil slice ignores none.
	IgnoreAttributes []string
}

// Default limits.
const (
	DefaultMaxProfiles      = 65536
	DefaultMaxStackDepth    = 4096
	DefaultMaxFrameRefs     = 1 << 25
	DefaultMaxLabels        = 64
	DefaultMaxLabelValueLen = 2048
)

// DefaultIgnoredAttributes returns the attribute keys that are not labels by
// default: the eBPF profiler puts them on every sample, and as labels they
// would split each process into one series per thread and per CPU.
func DefaultIgnoredAttributes() []string {
	return []string{"thread.id", "cpu.logical_number"}
}

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{}.withDefaults()
}

func (l Limits) withDefaults() Limits {
	l.MaxProfiles = orDefault(l.MaxProfiles, DefaultMaxProfiles)
	l.MaxStackDepth = orDefault(l.MaxStackDepth, DefaultMaxStackDepth)
	l.MaxFrameRefs = orDefault(l.MaxFrameRefs, DefaultMaxFrameRefs)
	l.MaxLabels = orDefault(l.MaxLabels, DefaultMaxLabels)
	l.MaxLabelValueLen = orDefault(l.MaxLabelValueLen, DefaultMaxLabelValueLen)
	if l.IgnoreAttributes == nil {
		l.IgnoreAttributes = DefaultIgnoredAttributes()
	}
	return l
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// limitError reports an exceeded limit; it matches ErrLimit.
func limitError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLimit, fmt.Sprintf(format, args...))
}
