package procinfo

import (
	"bytes"
	"net/url"
	"regexp"
	"strings"
)

// Env holds the OpenTelemetry resource settings a process was started with.
type Env struct {
	ServiceName string            // OTEL_SERVICE_NAME, which wins over service.name
	Attributes  map[string]string // OTEL_RESOURCE_ATTRIBUTES, decoded
}

// Attribute returns a resource attribute, with OTEL_SERVICE_NAME standing in
// for service.name as the OpenTelemetry SDKs do.
func (e Env) Attribute(key string) string {
	if key == "service.name" && e.ServiceName != "" {
		return e.ServiceName
	}
	return e.Attributes[key]
}

func parseEnviron(b []byte) Env {
	var env Env
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := bytes.Cut(kv, []byte{'='})
		if !ok {
			continue
		}
		switch string(k) {
		case "OTEL_SERVICE_NAME":
			env.ServiceName = strings.TrimSpace(string(v))
		case "OTEL_RESOURCE_ATTRIBUTES":
			env.Attributes = parseResourceAttributes(string(v))
		}
	}
	return env
}

// parseResourceAttributes decodes "k1=v1,k2=v2" with values percent-encoded
// as the OpenTelemetry specification requires; malformed pairs are skipped,
// as the SDKs do.
func parseResourceAttributes(s string) map[string]string {
	attrs := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		if dec, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			v = dec
		}
		attrs[k] = v
	}
	return attrs
}

// containerIDPattern finds the 64-hex container id that Docker, containerd,
// CRI-O and Podman put in cgroup paths (e.g. docker-<id>.scope,
// /kubepods/burstable/pod<uid>/<id>, cri-containerd-<id>.scope).
var containerIDPattern = regexp.MustCompile(`(?:^|[/\-:])([0-9a-f]{64})(?:\.scope)?(?:/|$)`)

// parseCgroup returns the process's cgroup path (the v2 one when present)
// and the container id found in any hierarchy.
func parseCgroup(b []byte) (path, container string) {
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-id:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" || path == "" {
			path = parts[2]
		}
		if container == "" {
			if m := containerIDPattern.FindAllStringSubmatch(parts[2], -1); len(m) > 0 {
				container = m[len(m)-1][1]
			}
		}
	}
	return path, container
}
