package pprofconv

import (
	"encoding/binary"
	"slices"
	"strings"
	"unsafe"

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

// labelText is one name of a sample's labels and its first value.
type labelText struct{ name, value string }

// labelSets interns the label sets of one profile's samples. A sample's
// labels are looked up by their string indexes, as sent: samples of one
// set usually list the same indexes (an agent writes them per process),
// so they are read as text once. Sets are then equal by text, so that
// samples whose labels differ only in order or indexes share a set, its
// sanitizing and its filter calls.
type labelSets struct {
	sets     []sampleSet
	byText   map[string]int32 // text key (textKey) → set
	byIdx    map[string]int32 // the sample's labels (index pairs) → set
	prev     []label          // the labels of the previous sample looked up
	prevSpan span             // and where they are in the tables
	prevID   int32            // their set + 1, 0 for none
	texts    []labelText
	seen     map[string]bool // names in texts, for samples with many labels
	key      []byte
}

func (ls *labelSets) reset() {
	ls.sets = ls.sets[:0]
	clear(ls.byText)
	clear(ls.byIdx) // its keys alias the tables' labels, about to be overwritten
	ls.prev, ls.prevSpan, ls.prevID = nil, span{}, 0
}

// set returns the set of sample i's labels, checking them against lim the
// first time the set is seen.
func (ls *labelSets) set(t *tables, i int, s sample, base labels.Labels, lim Limits) (int32, error) {
	labs := t.labels[s.labels.start:s.labels.end]
	if ls.prevID != 0 && (s.labels == ls.prevSpan || slices.Equal(labs, ls.prev)) {
		return ls.prevID - 1, nil // the decoder shares a run of equal labels (shareLabels)
	}
	id, ok := ls.byIdx[labelsKey(labs)]
	if !ok {
		var err error
		if id, err = ls.bySetText(t, i, labs, base, lim); err != nil {
			return 0, err
		}
		if ls.byIdx == nil {
			ls.byIdx = map[string]int32{}
		}
		ls.byIdx[labelsKey(labs)] = id
	}
	ls.prev, ls.prevSpan, ls.prevID = labs, s.labels, id+1
	return id, nil
}

// bySetText reads labs as pprof does (map[string][]string: a name's first
// value counts), checks them and returns their set.
func (ls *labelSets) bySetText(t *tables, i int, labs []label, base labels.Labels, lim Limits) (int32, error) {
	ls.texts = ls.texts[:0]
	clear(ls.seen)
	for _, l := range labs {
		name := t.str(l.key)
		if ls.has(name, len(labs)) {
			continue
		}
		if len(ls.texts) == lim.MaxSampleLabels {
			return 0, Errorf(ErrBadLabels, "sample %d has %d labels, more than the limit of %d", i, countNames(t, labs), lim.MaxSampleLabels)
		}
		ls.texts = append(ls.texts, labelText{name, t.str(l.str)})
	}
	// Sorted names make the winner deterministic when two sanitize to the
	// same name ("http.method" and "http_method").
	slices.SortFunc(ls.texts, func(a, b labelText) int { return strings.Compare(a.name, b.name) })
	if err := checkLabels(i, ls.texts, lim); err != nil {
		return 0, err
	}
	ls.key = textKey(ls.key[:0], ls.texts)
	id, ok := ls.byText[string(ls.key)]
	if !ok {
		id = int32(len(ls.sets))
		ls.sets = append(ls.sets, newSampleSet(ls.texts, base))
		if ls.byText == nil {
			ls.byText = map[string]int32{}
		}
		ls.byText[string(ls.key)] = id
	}
	return id, nil
}

// has reports whether texts has name, and records it in seen when a
// sample has so many labels that scanning texts would cost too much.
func (ls *labelSets) has(name string, labels int) bool {
	if labels <= 16 {
		return slices.ContainsFunc(ls.texts, func(x labelText) bool { return x.name == name })
	}
	if ls.seen == nil {
		ls.seen = map[string]bool{}
	}
	if ls.seen[name] {
		return true
	}
	ls.seen[name] = true
	return false
}

func countNames(t *tables, labs []label) int {
	names := map[string]bool{}
	for _, l := range labs {
		names[t.str(l.key)] = true
	}
	return len(names)
}

func checkLabels(i int, texts []labelText, lim Limits) error {
	for _, l := range texts {
		if len(l.name) > lim.MaxLabelName {
			return Errorf(ErrBadLabels, "sample %d: label name %.40q... is longer than %d bytes", i, l.name, lim.MaxLabelName)
		}
		if len(l.value) > lim.MaxLabelValue {
			return Errorf(ErrBadLabels, "sample %d: value of label %q is longer than %s", i, l.name, FormatBytes(int64(lim.MaxLabelValue)))
		}
	}
	return nil
}

// textKey identifies a label set by its text: names and values,
// length-prefixed.
func textKey(buf []byte, texts []labelText) []byte {
	for _, l := range texts {
		buf = binary.AppendUvarint(buf, uint64(len(l.name)))
		buf = append(buf, l.name...)
		buf = binary.AppendUvarint(buf, uint64(len(l.value)))
		buf = append(buf, l.value...)
	}
	return buf
}

// labelsKey returns the bytes of labs as a string, for a map key, without
// copying: labs must not change while the key is in use.
func labelsKey(labs []label) string {
	if len(labs) == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Pointer(&labs[0])), len(labs)*int(unsafe.Sizeof(label{})))
}

// newSampleSet sanitizes a sample's string labels, sorted by name.
// Numeric labels are ignored: they are per-sample measurements (Go's heap
// profile puts the allocation size there), not series identity. Of several
// values for one name only the first is kept. Empty values mean "absent",
// as in Prometheus. Names and values are copied: the limiter keeps them,
// and the protobuf buffer they alias is reused.
func newSampleSet(texts []labelText, base labels.Labels) sampleSet {
	var set sampleSet
	b := labels.NewScratchBuilder(len(texts))
	seen := make(map[string]bool, len(texts))
	for _, l := range texts {
		if l.value == "" {
			continue
		}
		name := SanitizeLabelName(l.name)
		switch {
		case name == "" || ReservedLabelName(name):
			set.reserved++
		case base.Has(name) || seen[name]:
			set.conflicts++
		default:
			seen[name] = true
			b.Add(strings.Clone(name), strings.Clone(validString(l.value)))
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
