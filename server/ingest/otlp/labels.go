package otlp

import (
	"maps"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
)

// attrs is a set of OpenTelemetry attributes with values rendered as strings.
type attrs map[string]string

// labelRule makes one label from the first of keys that has a value.
type labelRule struct {
	label string
	keys  []string
}

// labelRules is the attribute → label table documented on Convert. The names
// are the agent's (package agent), so OTLP series and agent series of the
// same process are selected alike.
func labelRules() []labelRule {
	return []labelRule{
		{"service_name", []string{"service.name"}},
		// Like the agent, fall back to the executable: every series gets a
		// service to select by.
		{"service", []string{"service.name", "process.executable.name"}},
		{"version", []string{"service.version"}},
		{"environment", []string{"deployment.environment.name", "deployment.environment"}},
		{"node", []string{"host.name", "k8s.node.name"}},
		{"namespace", []string{"k8s.namespace.name"}},
		{"pod", []string{"k8s.pod.name"}},
		{"container", []string{"k8s.container.name"}},
		{"container_id", []string{"container.id"}},
		{"pid", []string{"process.pid"}},
		{"comm", []string{"process.executable.name"}},
		{"exe", []string{"process.executable.path"}},
		{"build_id", []string{attrBuildIDGNU, attrBuildIDGo, attrBuildIDHtlhash}},
	}
}

// labeler turns attributes into series labels within the limits.
type labeler struct {
	rules       []labelRule
	ignore      map[string]bool
	maxLabels   int
	maxValueLen int
}

func newLabeler(lim Limits) *labeler {
	l := &labeler{
		rules:       labelRules(),
		ignore:      make(map[string]bool, len(lim.IgnoreAttributes)),
		maxLabels:   lim.MaxLabels,
		maxValueLen: lim.MaxLabelValueLen,
	}
	for _, k := range lim.IgnoreAttributes {
		l.ignore[k] = true
	}
	return l
}

// labels applies the table: first the rules, then every attribute no rule
// took a value from becomes a label of its sanitized key. Rule labels win
// over sanitized keys of the same name; among the latter the smallest key
// wins, so the result does not depend on map order.
func (l *labeler) labels(a attrs) (labels.Labels, error) {
	out := make(map[string]string, len(a)+2)
	used := make(map[string]bool, len(l.rules))
	for _, r := range l.rules {
		for _, k := range r.keys {
			if v := a[k]; v != "" && !l.ignore[k] {
				out[r.label], used[k] = v, true
				break
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		name := sanitizeName(k)
		if a[k] == "" || used[k] || l.ignore[k] || name == "" {
			continue
		}
		if _, taken := out[name]; !taken {
			out[name] = a[k]
		}
	}
	return l.check(labels.FromMap(out))
}

func (l *labeler) check(ls labels.Labels) (labels.Labels, error) {
	if n := ls.Len(); n > l.maxLabels {
		return ls, limitError("%d labels, more than %d: %s", n, l.maxLabels, ls.String())
	}
	var err error
	ls.Range(func(lb labels.Label) {
		if err == nil && len(lb.Value) > l.maxValueLen {
			err = limitError("label %s: value of %d bytes, more than %d", lb.Name, len(lb.Value), l.maxValueLen)
		}
	})
	return ls, err
}

// sanitizeName makes an attribute key (or a sample type) a valid label name:
// every character but [a-zA-Z0-9_] becomes '_', a leading digit gets a '_'
// in front, and a leading "__", reserved for internal labels, becomes "_".
func sanitizeName(s string) string {
	out := strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
	switch {
	case out == "":
	case out[0] >= '0' && out[0] <= '9':
		out = "_" + out
	case strings.HasPrefix(out, "__"):
		out = "_" + strings.TrimLeft(out, "_")
	}
	return out
}
