// Package testenv decides whether tests that need root and BPF run, skip or
// fail: they skip on a developer's unprivileged machine, and fail in CI, where
// FLIGHTREC_REQUIRE_BPF=1 says the kernel and privileges are there.
package testenv

import (
	"os"
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
