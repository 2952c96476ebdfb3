package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && v > 0 {
			return float64(v)
		}
	}
	return 100 // USER_HZ on every Linux architecture flightrec supports
}()

// statCPU returns utime+stime of process pid (all its threads, live and
// exited) from /proc/PID/stat. Its resolution is one clock tick (10 ms).
func statCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (time.Duration, error) {
	// comm (field 2) is in parentheses and may hold spaces: split after
	// the last ')'. Fields then start at 3 (state); utime is 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat: %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat: %q", b)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed stat utime/stime: %q", b)
	}
	return time.Duration(float64(ut+st) / clockTicks * float64(time.Second)), nil
}

// processCPU returns the CPU time (user+system) that every thread of
// process pid has used, live and exited, from the process's POSIX CPU clock
// (CLOCK_PROCESS_CPUTIME_ID of another process, CPUCLOCK_SCHED). It is the
// same quantity as utime+stime in /proc/PID/stat, which the kernel scales to
// sum to this runtime, but with nanosecond resolution instead of 10 ms: that
// matters when the whole budget over a minute is 0.12 s.
func processCPU(pid int) (time.Duration, error) {
	// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED) = (~pid << 3) | 2
	clock := int32(^uint32(pid)<<3 | 2)
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		d, serr := statCPU(pid)
		if serr != nil {
			return 0, fmt.Errorf("process CPU clock of %d: %v; /proc stat: %v", pid, err, serr)
		}
		return d, nil
	}
	return time.Duration(ts.Nano()), nil
}

// statusKB returns a "Key:   N kB" field of /proc/PID/status in bytes.
func statusKB(pid int, key string) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, key)
}

func parseStatusKB(b []byte, key string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed %s line %q", key, sc.Text())
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("no %s in status", key)
}

// bpfUsage is what a process's BPF file descriptors hold.
type bpfUsage struct {
	Progs     int
	RunTimeNs uint64 // sum of run_time_ns over the programs (bpf_stats_enabled)
	RunCnt    uint64 // sum of run_cnt
	Maps      int
	MapBytes  uint64 // sum of memlock over the maps
}

// readBPFUsage walks /proc/PID/fd for BPF programs and maps and sums their
// fdinfo. Objects reachable through more than one descriptor are counted
// once (by prog_id / map_id).
func readBPFUsage(pid int) (bpfUsage, error) {
	var u bpfUsage
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return u, err
	}
	progs := map[string]bool{}
	maps := map[string]bool{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		var kind string
		switch target {
		case "anon_inode:bpf-prog":
			kind = "prog"
		case "anon_inode:bpf-map":
			kind = "map"
		default:
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		info := parseFdinfo(b)
		switch kind {
		case "prog":
			id := info["prog_id"]
			if id != "" && progs[id] {
				continue
			}
			progs[id] = true
			u.Progs++
			u.RunTimeNs += atou(info["run_time_ns"])
			u.RunCnt += atou(info["run_cnt"])
		case "map":
			id := info["map_id"]
			if id != "" && maps[id] {
				continue
			}
			maps[id] = true
			u.Maps++
			u.MapBytes += atou(info["memlock"])
		}
	}
	return u, nil
}

func parseFdinfo(b []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

func atou(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// kernelRelease is uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

const bpfStatsPath = "/proc/sys/kernel/bpf_stats_enabled"

// enableBPFStats turns on kernel.bpf_stats_enabled and returns a function
// that restores the previous value.
func enableBPFStats() (restore func() error, err error) {
	old, err := os.ReadFile(bpfStatsPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", bpfStatsPath, err)
	}
	if err := os.WriteFile(bpfStatsPath, []byte("1\n"), 0o644); err != nil {
		return nil, fmt.Errorf("sysctl kernel.bpf_stats_enabled=1: %w", err)
	}
	return func() error {
		return os.WriteFile(bpfStatsPath, old, 0o644)
	}, nil
}

// loadAvg is the 1-minute load average, a measure of how busy the shared
// machine was besides the bench's own load (2 burners: 2.0).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// otherAgents lists processes named flightrec-agent other than self.
func otherAgents(self int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(comm)) == "flightrec-agent" {
			pids = append(pids, pid)
		}
	}
	return pids
}
