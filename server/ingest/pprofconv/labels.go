package pprofconv

import (
	"slices"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/prometheus/prometheus/model/labels"
)

// SanitizeLabelName turns name into a Prometheus (legacy) label name:
// every character outside [a-zA-Z0-9_] becomes '_' ("http.method" →
// "http_method") and a leading digit gets a '_' prefix. It returns "" for
// an empty name.
func SanitizeLabelName(name string) string {
	if name == "" || ValidLabelName(name) {
		return name
	}
	var b strings.Builder
	if name[0] >= '0' && name[0] <= '9' {
		b.WriteByte('_')
	}
	for _, r := range name {
		if isNameChar(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// ValidLabelName reports whether name matches [a-zA-Z_][a-zA-Z0-9_]*. The
// server sticks to the legacy scheme so every label works unquoted in
// selectors.
func ValidLabelName(name string) bool {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for _, r := range name {
		if !isNameChar(r) {
			return false
		}
	}
	return true
}

// ReservedLabelName reports whether name is Prometheus-reserved ("__name__",
// "__session_id__"): a sender cannot set those.
func ReservedLabelName(name string) bool { return strings.HasPrefix(name, "__") }

func isNameChar(r rune) bool {
	return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

func toValidUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// sampleSet is a sample's string labels after sanitizing, before the filter.
type sampleSet struct {
	labels    labels.Labels
	conflicts int // labels dropped: same name as a base label or another sample label
	reserved  int // labels dropped: reserved or empty name
}

// rawKey identifies a sample's label set before sanitizing, so samples of
// the same set (most of them) are sanitized once.
func rawKey(s *profile.Sample, buf []byte) []byte {
	keys := make([]string, 0, len(s.Label))
	for k := range s.Label {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = buf[:0]
	for _, k := range keys {
		buf = append(buf, k...)
		buf = append(buf, 0xff)
		if vs := s.Label[k]; len(vs) > 0 {
			buf = append(buf, vs[0]...)
		}
		buf = append(buf, 0xff)
	}
	return buf
}

// newSampleSet sanitizes a sample's string labels. Numeric labels are
// ignored: they are per-sample measurements (Go's heap profile puts the
// allocation size there), not series identity. Of several values for one
// name only the first is kept. Empty values mean "absent", as in Prometheus.
func newSampleSet(s *profile.Sample, base labels.Labels) sampleSet {
	keys := make([]string, 0, len(s.Label))
	for k := range s.Label {
		keys = append(keys, k)
	}
	// Sorted raw names make the winner deterministic when two sanitize to
	// the same name ("http.method" and "http_method").
	slices.Sort(keys)
	var set sampleSet
	b := labels.NewScratchBuilder(len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		vs := s.Label[k]
		if len(vs) == 0 || vs[0] == "" {
			continue
		}
		name := SanitizeLabelName(k)
		switch {
		case name == "" || ReservedLabelName(name):
			set.reserved++
		case base.Has(name) || seen[name]:
			set.conflicts++
		default:
			seen[name] = true
			b.Add(name, validString(vs[0]))
		}
	}
	b.Sort()
	set.labels = b.Labels()
	return set
}

// merge returns base ∪ sample, base winning (a filter could return names
// it was not given).
func merge(base, sample labels.Labels) labels.Labels {
	if sample.IsEmpty() {
		return base
	}
	b := labels.NewBuilder(base)
	sample.Range(func(l labels.Label) {
		if !base.Has(l.Name) {
			b.Set(l.Name, l.Value)
		}
	})
	return b.Labels()
}
