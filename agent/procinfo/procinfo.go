// Package procinfo reads what the agent needs to know about a process from
// /proc: identity, executable mappings, container and OpenTelemetry labels.
package procinfo

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is a snapshot of one process taken when the agent first saw it.
type Process struct {
	PID       uint32
	StartTime uint64 // clock ticks since boot (/proc/PID/stat field 22): tells pid reuse apart
	Comm      string
	Exe       string // path of the executable inside the process's mount namespace; "" for kernel threads
	Kernel    bool   // a kernel thread: no user address space
	Mappings  []Mapping
	Env       Env
	Cgroup    string // the unified (v2) path, else the first v1 path that names a container
	Container string // container id derived from the cgroup, "" outside containers

	root string // Root, formatted once: symbolization asks for it per frame
}

// Mapping is one executable file-backed (or special) region of the address space.
type Mapping struct {
	Start, End uint64 // runtime addresses [Start, End)
	Offset     uint64 // file offset of Start
	Dev        uint64 // device (major<<8|minor as in /proc/PID/maps) and inode identify the file
	Inode      uint64
	Path       string // as /proc/PID/maps prints it: a path, "[vdso]", "[anon:...]"...
}

// FileBacked reports whether the mapping is a file, which can be opened and symbolized.
func (m *Mapping) FileBacked() bool { return m.Inode != 0 && strings.HasPrefix(m.Path, "/") }

// Root is where the process's own files are visible from the agent's mount
// namespace (containers have their own root).
func (p *Process) Root() string {
	if p.root == "" { // a Process not made by Read
		return fmt.Sprintf("/proc/%d/root", p.PID)
	}
	return p.root
}

// MapFile is the path that opens exactly the file behind m, even if it was
// deleted or lives in another mount namespace.
func (p *Process) MapFile(m *Mapping) string {
	return fmt.Sprintf("/proc/%d/map_files/%x-%x", p.PID, m.Start, m.End)
}

// Find returns the mapping containing addr.
func (p *Process) Find(addr uint64) (*Mapping, bool) {
	i, ok := p.Index(addr)
	if !ok {
		return nil, false
	}
	return &p.Mappings[i], true
}

// Index returns the index in Mappings of the mapping containing addr; the
// kernel lists mappings in address order.
func (p *Process) Index(addr uint64) (int, bool) {
	ms := p.Mappings
	lo, hi := 0, len(ms)
	for lo < hi {
		mid := (lo + hi) / 2
		switch {
		case addr < ms[mid].Start:
			hi = mid
		case addr >= ms[mid].End:
			lo = mid + 1
		default:
			return mid, true
		}
	}
	return 0, false
}

// Reader reads processes from a proc file system.
type Reader struct {
	Proc string // mount point, "/proc" unless testing
}

// Read takes a snapshot of pid. Reading a process that has exited returns an
// error wrapping os.ErrNotExist.
func (r Reader) Read(pid uint32) (*Process, error) {
	dir := filepath.Join(r.proc(), strconv.FormatUint(uint64(pid), 10))
	p := &Process{PID: pid, root: fmt.Sprintf("/proc/%d/root", pid)}
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil, fmt.Errorf("read process %d: %w", pid, err)
	}
	if p.Comm, p.StartTime, p.Kernel, err = parseStat(stat); err != nil {
		return nil, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	if !p.Kernel {
		if err := r.readUser(dir, p); err != nil {
			return nil, err
		}
	}
	if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		p.Cgroup, p.Container = parseCgroup(cg)
	}
	return p, nil
}

// StartTime reads only pid's start time: enough to tell whether a process
// is still the one the agent read, at a fraction of Read's cost.
func (r Reader) StartTime(pid uint32) (uint64, error) {
	stat, err := os.ReadFile(filepath.Join(r.proc(), strconv.FormatUint(uint64(pid), 10), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read process %d: %w", pid, err)
	}
	_, start, _, err := parseStat(stat)
	return start, err
}

// readUser reads what only a user-space process has. The mappings are
// required; the rest degrades to empty labels (e.g. environ needs ptrace
// access, which a hardened kernel may deny even to root).
func (r Reader) readUser(dir string, p *Process) error {
	maps, err := os.ReadFile(filepath.Join(dir, "maps"))
	if err != nil {
		return fmt.Errorf("read mappings of process %d: %w", p.PID, err)
	}
	if p.Mappings, err = parseMaps(maps); err != nil {
		return fmt.Errorf("parse /proc/%d/maps: %w", p.PID, err)
	}
	if len(p.Mappings) == 0 {
		// A zombie or a process mid-exec has no address space to read.
		return fmt.Errorf("process %d has no executable mappings: %w", p.PID, os.ErrNotExist)
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.Exe = strings.TrimSuffix(exe, " (deleted)")
	}
	if env, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil {
		p.Env = parseEnviron(env)
	}
	return nil
}

func (r Reader) proc() string {
	if r.Proc == "" {
		return "/proc"
	}
	return r.Proc
}

// parseStat extracts comm, start time and whether the task is a kernel
// thread. comm is between the first '(' and the last ')' and may hold spaces
// and parentheses itself.
func parseStat(b []byte) (comm string, start uint64, kernel bool, err error) {
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return "", 0, false, fmt.Errorf("no comm in %q", truncate(b))
	}
	comm = string(b[open+1 : close])
	// Fields after comm start at field 3 (state); starttime is field 22,
	// flags is field 9.
	fields := strings.Fields(string(b[close+1:]))
	if len(fields) < 20 {
		return "", 0, false, fmt.Errorf("%d fields after comm, want at least 20", len(fields))
	}
	if start, err = strconv.ParseUint(fields[19], 10, 64); err != nil {
		return "", 0, false, fmt.Errorf("start time: %w", err)
	}
	flags, err := strconv.ParseUint(fields[6], 10, 64)
	if err != nil {
		return "", 0, false, fmt.Errorf("flags: %w", err)
	}
	const pfKthread = 0x00200000
	return comm, start, flags&pfKthread != 0, nil
}

// parseMaps keeps the executable regions: only they can hold a sampled PC.
func parseMaps(b []byte) ([]Mapping, error) {
	var ms []Mapping
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		m, exec, err := parseMapsLine(string(line))
		if err != nil {
			return nil, err
		}
		if exec {
			ms = append(ms, m)
		}
	}
	return ms, nil
}

func parseMapsLine(line string) (m Mapping, exec bool, err error) {
	// start-end perms offset dev inode [path]
	f := strings.Fields(line)
	if len(f) < 5 {
		return m, false, fmt.Errorf("short maps line %q", line)
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return m, false, fmt.Errorf("bad range in %q", line)
	}
	if m.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, false, fmt.Errorf("bad start in %q", line)
	}
	if m.End, err = strconv.ParseUint(hi, 16, 64); err != nil || m.End < m.Start {
		return m, false, fmt.Errorf("bad end in %q", line)
	}
	if len(f[1]) < 3 {
		return m, false, fmt.Errorf("bad permissions in %q", line)
	}
	if m.Offset, err = strconv.ParseUint(f[2], 16, 64); err != nil {
		return m, false, fmt.Errorf("bad offset in %q", line)
	}
	major, minor, ok := strings.Cut(f[3], ":")
	maj, err1 := strconv.ParseUint(major, 16, 32)
	min, err2 := strconv.ParseUint(minor, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return m, false, fmt.Errorf("bad device in %q", line)
	}
	m.Dev = maj<<8 | min
	if m.Inode, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return m, false, fmt.Errorf("bad inode in %q", line)
	}
	if len(f) > 5 {
		// Paths may contain spaces: take everything after the inode field.
		m.Path = strings.TrimSuffix(strings.Join(f[5:], " "), " (deleted)")
	}
	return m, f[1][2] == 'x', nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
