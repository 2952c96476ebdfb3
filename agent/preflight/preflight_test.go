package preflight

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeSystem(euid int, capEff string, files map[string]string) System {
	files["/proc/self/status"] = "Name:\tx\nCapEff:\t" + capEff + "\n"
	return System{
		Euid: func() int { return euid },
		ReadFile: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
		},
	}
}

func TestCheck(t *testing.T) {
	btf := "/sys/kernel/btf/vmlinux"
	paranoid := "/proc/sys/kernel/perf_event_paranoid"
	caps := func(bits ...uint) string {
		var v uint64
		for _, b := range bits {
			v |= 1 << b
		}
		return fmt.Sprintf("%016x", v)
	}
	tests := []struct {
		name         string
		sys          System
		wantProblems []string // substrings, one per problem
		wantWarnings int
	}{
		{"root", fakeSystem(0, caps(), map[string]string{btf: "x", paranoid: "2"}), nil, 0},
		{"caps", fakeSystem(1000, caps(capBPF, capPerfmon, capSysPtrace), map[string]string{btf: "x", paranoid: "3"}), nil, 0},
		{"caps without ptrace", fakeSystem(1000, caps(capBPF, capPerfmon), map[string]string{btf: "x", paranoid: "2"}), nil, 1},
		{"unprivileged", fakeSystem(1000, caps(), map[string]string{btf: "x", paranoid: "2"}),
			[]string{"CAP_BPF and CAP_PERFMON", "kernel.perf_event_paranoid=2"}, 0},
		{"only bpf", fakeSystem(1000, caps(capBPF), map[string]string{btf: "x", paranoid: "-1"}),
			[]string{"CAP_BPF and CAP_PERFMON"}, 0},
		{"no btf", fakeSystem(0, caps(), map[string]string{paranoid: "2"}), []string{"no kernel BTF"}, 0},
		{"no perf", fakeSystem(0, caps(), map[string]string{btf: "x"}), []string{"perf events are not available"}, 0},
	}
	for _, tt := range tests {
		r := tt.sys.Check()
		if len(r.Problems) != len(tt.wantProblems) {
			t.Errorf("%s: problems %q, want %d", tt.name, r.Problems, len(tt.wantProblems))
			continue
		}
		for i, want := range tt.wantProblems {
			if !strings.Contains(r.Problems[i], want) {
				t.Errorf("%s: problem %q does not say %q", tt.name, r.Problems[i], want)
			}
		}
		if len(r.Warnings) != tt.wantWarnings {
			t.Errorf("%s: warnings %q, want %d", tt.name, r.Warnings, tt.wantWarnings)
		}
		if (r.Err() != nil) != (len(tt.wantProblems) > 0) {
			t.Errorf("%s: Err() = %v", tt.name, r.Err())
		}
	}
}

// TestReadHead: the host's reader stops at 64 KiB (the kernel's BTF is
// 5 MiB and only needs to be readable) and reports a missing file.
func TestReadHead(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := readHead(big); err != nil || len(b) != 64<<10 {
		t.Errorf("readHead of 1 MiB: %d bytes, %v", len(b), err)
	}
	if _, err := readHead(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readHead of a missing file: %v", err)
	}
}
