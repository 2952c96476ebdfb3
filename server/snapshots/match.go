package snapshots

import (
	"github.com/prometheus/prometheus/model/labels"
)

// Matches reports whether a selector's matchers select the snapshot: all of
// them match one of its processes' label sets, or its trigger's labels
// (an alert's). Each set is completed with the node's labels and its name
// ("node"), which processes carry in profiles too, so {node="n1"} selects
// the snapshots of n1 whatever their processes say. A trigger without
// labels is no set: {service!="api"} must not match every manual trigger.
func (m *Meta) Matches(ms []*labels.Matcher) bool {
	if len(ms) == 0 {
		return true
	}
	sets := m.LabelSets[:len(m.LabelSets):len(m.LabelSets)]
	if len(m.Trigger.Labels) > 0 {
		sets = append(sets, m.Trigger.Labels)
	}
	if len(sets) == 0 {
		sets = append(sets, nil) // the node's labels alone
	}
	for _, set := range sets {
		if matchAll(ms, func(name string) string { return m.lookup(set, name) }) {
			return true
		}
	}
	return false
}

// lookup finds name in set, else among the node's labels.
func (m *Meta) lookup(set map[string]string, name string) string {
	if v, ok := set[name]; ok {
		return v
	}
	if name == "node" {
		return m.Node
	}
	return m.Labels[name]
}

func matchAll(ms []*labels.Matcher, get func(string) string) bool {
	for _, mt := range ms {
		if !mt.Matches(get(mt.Name)) {
			return false
		}
	}
	return true
}
