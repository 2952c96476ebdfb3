package agent

import (
	"maps"
	"testing"

	"github.com/flightrec/flightrec/agent/procinfo"
)

func TestProcessLabels(t *testing.T) {
	otel := &procinfo.Process{
		Comm: "api", Exe: "/srv/api-server", Container: "c0ffee",
		Env: procinfo.Env{ServiceName: "checkout", Attributes: map[string]string{
			"service.version": "1.8.2", "deployment.environment": "prod",
			"k8s.pod.name": "checkout-7d9", "k8s.namespace.name": "shop",
		}},
	}
	plain := &procinfo.Process{Comm: "nginx", Exe: "/usr/sbin/nginx"}
	kthread := &procinfo.Process{Comm: "kworker/0:1", Kernel: true}
	tests := []struct {
		name    string
		p       *procinfo.Process
		buildID string
		want    map[string]string
	}{
		{"otel", otel, "b1d", map[string]string{
			"node": "n1", "pid": "42", "comm": "api", "exe": "/srv/api-server", "build_id": "b1d",
			"container_id": "c0ffee", "service": "checkout", "version": "1.8.2", "environment": "prod",
			"namespace": "shop", "pod": "checkout-7d9", "container": ""}},
		{"fallbacks", plain, "abcdef", map[string]string{
			"node": "n1", "pid": "42", "comm": "nginx", "exe": "/usr/sbin/nginx", "build_id": "abcdef",
			"container_id": "", "service": "nginx", "version": "abcdef", "environment": "",
			"namespace": "", "pod": "", "container": ""}},
		{"kernel thread", kthread, "", map[string]string{
			"node": "n1", "pid": "42", "comm": "kworker/0:1", "exe": "", "build_id": "",
			"container_id": "", "service": "kernel", "version": "", "environment": "",
			"namespace": "", "pod": "", "container": ""}},
		{"gone before read", nil, "", map[string]string{"node": "n1", "pid": "42", "comm": "short", "service": "short"}},
	}
	for _, tt := range tests {
		got := processLabels("n1", 42, "short", tt.p, tt.buildID)
		if !maps.Equal(got, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.name, got, tt.want)
		}
	}
}
