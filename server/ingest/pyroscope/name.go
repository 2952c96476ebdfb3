// Package pyroscope reads requests of Pyroscope's /ingest API, as
// pyroscope-go and the other Pyroscope SDKs send them, for pprof bodies.
package pyroscope

import (
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
)

// Label names the application name becomes: service_name is what Pyroscope
// and Grafana use, service what flightrec's other sources use.
const (
	ServiceNameLabel = "service_name"
	ServiceLabel     = "service"
)

// Limits on names, as on pprof sample labels.
const (
	maxTags       = 64
	maxValueBytes = 1 << 10
)

// suffixHint tells whether s is a profile type old Pyroscope clients
// append to the application name ("myapp.cpu"), and the hint it gives.
func suffixHint(s string) (pprofconv.Hint, bool) {
	switch s {
	case "mutex_count", "mutex_duration":
		return pprofconv.HintMutex, true
	case "block_count", "block_duration":
		return pprofconv.HintBlock, true
	case "cpu", "itimer", "wall",
		"alloc_objects", "alloc_space", "inuse_objects", "inuse_space",
		"goroutine", "goroutines", "lock_count", "lock_duration",
		"alloc_in_new_tlab_objects", "alloc_in_new_tlab_bytes",
		"alloc_outside_tlab_objects", "alloc_outside_tlab_bytes":
		return pprofconv.HintNone, true
	}
	return pprofconv.HintNone, false
}

// Name is a parsed application name, "myapp.cpu{env=prod,region=eu}".
type Name struct {
	App    string         // without the profile-type suffix
	Suffix string         // the stripped suffix ("cpu"), "" if none
	Hint   pprofconv.Hint // block or mutex, from the suffix
	Tags   labels.Labels  // names sanitized; reserved names and empty values dropped
}

// ParseName parses an application name the way Pyroscope does: the app up
// to '{', then comma-separated key=value tags up to '}', each trimmed of
// spaces. Pyroscope has no escapes: a value runs to the next ',' or '}' and
// may hold '=' and '{'. Tag names are sanitized like pprof label names
// ("otel.scope.name" → "otel_scope_name"); names that end up reserved
// ("__session_id__", a per-process-start id) and tags with empty values are
// dropped; of repeated names the last wins. Unlike Pyroscope, which
// silently loses such tags, a missing '}', text after it or a tag without
// '=' is an error.
func ParseName(s string) (Name, error) {
	app, rest, hasTags := strings.Cut(s, "{")
	n := Name{App: strings.TrimSpace(app)}
	if n.App == "" {
		return Name{}, pprofconv.Errorf(pprofconv.ErrBadLabels, "name %q: application name is empty", s)
	}
	if len(n.App) > maxValueBytes {
		return Name{}, pprofconv.Errorf(pprofconv.ErrBadLabels, "name: application name is longer than %d bytes", maxValueBytes)
	}
	n.App = strings.ToValidUTF8(n.App, "\uFFFD")
	if i := strings.LastIndexByte(n.App, '.'); i > 0 {
		hint, ok := suffixHint(n.App[i+1:])
		if app := strings.TrimSpace(n.App[:i]); ok && app != "" {
			n.App, n.Suffix, n.Hint = app, n.App[i+1:], hint
		}
	}
	if !hasTags {
		n.Tags = labels.EmptyLabels()
		return n, nil
	}
	body, after, ok := strings.Cut(rest, "}")
	if !ok {
		return Name{}, pprofconv.Errorf(pprofconv.ErrBadLabels, "name %q: tags lack the closing '}'", s)
	}
	if strings.TrimSpace(after) != "" {
		return Name{}, pprofconv.Errorf(pprofconv.ErrBadLabels, "name %q: text after the tags' '}'", s)
	}
	tags, err := parseTags(body)
	if err != nil {
		return Name{}, pprofconv.Errorf(pprofconv.ErrBadLabels, "name %q: %w", s, err)
	}
	n.Tags = tags
	return n, nil
}

func parseTags(s string) (labels.Labels, error) {
	b := labels.NewBuilder(labels.EmptyLabels())
	count := 0
	for kv := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue // "{}" and a trailing comma, as Pyroscope allows
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return labels.EmptyLabels(), pprofconv.Errorf(pprofconv.ErrBadLabels, "tag %q has no '='", strings.TrimSpace(kv))
		}
		name, value := pprofconv.SanitizeLabelName(strings.TrimSpace(k)), strings.TrimSpace(v)
		if name == "" {
			return labels.EmptyLabels(), pprofconv.Errorf(pprofconv.ErrBadLabels, "tag %q has an empty name", strings.TrimSpace(kv))
		}
		if len(value) > maxValueBytes {
			return labels.EmptyLabels(), pprofconv.Errorf(pprofconv.ErrBadLabels, "value of tag %s is longer than %d bytes", name, maxValueBytes)
		}
		if count++; count > maxTags {
			return labels.EmptyLabels(), pprofconv.Errorf(pprofconv.ErrBadLabels, "more than %d tags", maxTags)
		}
		if pprofconv.ReservedLabelName(name) {
			continue
		}
		b.Set(name, strings.ToValidUTF8(value, "\uFFFD")) // "" deletes, as in Pyroscope
	}
	return b.Labels(), nil
}

// Labels returns the series labels: the tags, then service_name and
// service set to the application name, overriding tags of those names (the
// application name is the series' identity in Pyroscope).
func (n Name) Labels() labels.Labels {
	b := labels.NewBuilder(n.Tags)
	b.Set(ServiceNameLabel, n.App)
	b.Set(ServiceLabel, n.App)
	return b.Labels()
}
