package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentDoesNotLinkServer keeps the node agent small: it runs on every
// node and must not carry the storage engines or the server's dependencies.
func TestAgentDoesNotLinkServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{"github.com/duckdb/", "github.com/ClickHouse/", "github.com/prometheus/prometheus/", "google.golang.org/grpc", "github.com/flightrec/flightrec/server"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("flightrec-agent depends on %s", dep)
			}
		}
	}
}
