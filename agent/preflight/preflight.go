// Package preflight checks, before the agent loads anything, that this
// process and kernel can run it, and names what is missing when they cannot.
package preflight

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Capability bits (linux/capability.h).
const (
	capSysPtrace = 19
	capSysAdmin  = 21
	capPerfmon   = 38
	capBPF       = 39
)

// System is what the checks read; tests replace it.
type System struct {
	Euid     func() int
	ReadFile func(string) ([]byte, error)
}

// Host is the running system.
func Host() System { return System{Euid: os.Geteuid, ReadFile: readHead} }

// readHead reads up to 64 KiB of a file: what the checks read is short, or
// (the kernel's BTF, 5 MiB) only needs to be readable.
func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// Report lists fatal problems and degradations.
type Report struct {
	Problems []string // the agent cannot run
	Warnings []string // it runs, with less
}

// Err is nil when nothing is fatal, else an error listing every problem,
// so a user fixes them all in one go.
func (r Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return errors.New("cannot start:\n  - " + strings.Join(r.Problems, "\n  - "))
}

// Check inspects privileges, BTF and perf events.
func (s System) Check() Report {
	var r Report
	caps, capErr := s.effectiveCaps()
	root := s.Euid() == 0
	has := func(bit uint) bool { return root || (capErr == nil && caps&(1<<bit) != 0) }

	if !has(capSysAdmin) && !(has(capBPF) && has(capPerfmon)) {
		r.Problems = append(r.Problems, fmt.Sprintf(
			"not privileged: running as uid %d without CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); run as root or grant them, e.g. setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search+ep flightrec-agent",
			s.Euid()))
	} else if !has(capSysPtrace) && !has(capSysAdmin) {
		r.Warnings = append(r.Warnings, "no CAP_SYS_PTRACE: other users' processes cannot be read, so their stacks stay unsymbolized and unlabelled")
	}
	if _, err := s.ReadFile("/sys/kernel/btf/vmlinux"); err != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("no kernel BTF: /sys/kernel/btf/vmlinux is unreadable (%v); the kernel needs CONFIG_DEBUG_INFO_BTF=y", unwrapPath(err)))
	}
	r.checkPerf(s, has(capPerfmon) || has(capSysAdmin))
	return r
}

func (r *Report) checkPerf(s System, privileged bool) {
	b, err := s.ReadFile("/proc/sys/kernel/perf_event_paranoid")
	if err != nil {
		r.Problems = append(r.Problems, "perf events are not available: /proc/sys/kernel/perf_event_paranoid is missing (kernel built without CONFIG_PERF_EVENTS?)")
		return
	}
	level, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("cannot parse kernel.perf_event_paranoid %q", b))
		return
	}
	// CPU-wide events need level <= 0 without CAP_PERFMON; with it, any level.
	if !privileged && level > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf(
			"perf events are restricted: kernel.perf_event_paranoid=%d forbids CPU-wide sampling without CAP_PERFMON; run as root, grant CAP_PERFMON, or sysctl kernel.perf_event_paranoid=0", level))
	}
}

func (s System) effectiveCaps() (uint64, error) {
	b, err := s.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
