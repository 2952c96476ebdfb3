// Package testenv decides whether tests that need root, BPF or real peers
// (Prometheus, Alertmanager, chromium) run, skip or fail: they skip on a
// developer's machine without them, and fail in CI, where
// FLIGHTREC_REQUIRE_BPF=1 says everything is there.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RequireBPF skips t (or fails it when FLIGHTREC_REQUIRE_BPF=1) unless the
// test runs as root on a kernel with BTF.
func RequireBPF(t testing.TB) {
	t.Helper()
	reason := ""
	switch {
	case os.Geteuid() != 0:
		reason = "needs root to load BPF programs"
	case !exists("/sys/kernel/btf/vmlinux"):
		reason = "needs a kernel with BTF (/sys/kernel/btf/vmlinux)"
	}
	if reason == "" {
		return
	}
	if os.Getenv("FLIGHTREC_REQUIRE_BPF") == "1" {
		t.Fatalf("FLIGHTREC_REQUIRE_BPF=1 but this test %s", reason)
	}
	t.Skipf("skipping: %s (set FLIGHTREC_REQUIRE_BPF=1 to make this a failure)", reason)
}

// Short skips slow tests under -short.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow test skipped with -short")
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Tool returns the path of the first of names found on PATH. Without it the
// test skips, naming the Debian package to install, or fails when
// FLIGHTREC_REQUIRE_BPF=1: CI installs every real peer a test needs, so a
// missing one there is a broken CI, not a reason to skip.
func Tool(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found: install Debian's %s package (apt-get install %s) to run this test", names[0], pkg, pkg)
	if os.Getenv("FLIGHTREC_REQUIRE_BPF") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
