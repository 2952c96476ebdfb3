package agent

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/procinfo"
	"github.com/flightrec/flightrec/agent/symbolize"
)

// fakeProc is a /proc with the processes a test puts there.
type fakeProc struct {
	t   *testing.T
	dir string
}

// put writes pid's stat (comm, start time) and one executable mapping [lo, lo+0x1000).
func (f fakeProc) put(pid uint32, comm string, start, lo uint64) {
	dir := filepath.Join(f.dir, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (%s) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", pid, comm, start)
	maps := fmt.Sprintf("%x-%x r-xp 00000000 00:00 0 [anon:code]\n", lo, lo+0x1000)
	for name, body := range map[string]string{"stat": stat, "maps": maps} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f fakeProc) remove(pid uint32) {
	if err := os.RemoveAll(filepath.Join(f.dir, fmt.Sprint(pid))); err != nil {
		f.t.Fatal(err)
	}
}

// fakePIDs records Know and Forget.
type fakePIDs map[uint32]bool

func (s fakePIDs) Know(pid uint32) error   { s[pid] = true; return nil }
func (s fakePIDs) Forget(pid uint32) error { delete(s, pid); return nil }

func newTestTable(t *testing.T, retention time.Duration) (*processTable, fakeProc, fakePIDs) {
	t.Helper()
	fp := fakeProc{t, t.TempDir()}
	known := fakePIDs{}
	sym := symbolize.New(symbolize.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	tab := newProcessTable("n1", procinfo.Reader{Proc: fp.dir}, sym, known, retention)
	tab.now = func() uint64 { return 0 } // reads happen "at boot": every record is newer
	return tab, fp, known
}

const sec = uint64(time.Second)

// TestProcessExecExitRetention: a process is re-read on exec, kept with
// its labels and stacks for the retention time after its exit, then
// dropped and forgotten by the BPF side.
func TestProcessExecExitRetention(t *testing.T) {
	tab, fp, known := newTestTable(t, 70*time.Second)
	fp.put(100, "w1", 5, 0x10000)
	p := tab.observe(100, "w1", 1*sec, []uint64{0x10010})
	if p.labels[LabelComm] != "w1" || !known[100] || !p.space.Contains(0x10010) {
		t.Fatalf("first read: labels %v, known %v", p.labels, known)
	}
	// exec: new image, new comm; the next sample is in the new mapping.
	fp.put(100, "w2", 5, 0x20000)
	tab.exec(&events.ProcEvent{Kind: events.KindExec, PID: 100, Time: 2 * sec, Comm: "w2"})
	if p := tab.byPID[100]; p.labels[LabelComm] != "w2" || !p.space.Contains(0x20010) || p.space.Contains(0x10010) {
		t.Fatalf("after exec: labels %v; mappings not re-read", p.labels)
	}
	tab.stacks.put(100, 7, []uint64{0x20010}, nil, 2*sec)

	tab.exit(&events.ProcEvent{Kind: events.KindExit, PID: 100, Time: 3 * sec})
	fp.remove(100)
	for _, now := range []uint64{4 * sec, 40 * sec, 72 * sec} {
		tab.sweep(now)
		if tab.Labels(100)[LabelComm] != "w2" {
			t.Fatalf("at %ds (exit at 3 s): exited process dropped before the 70 s retention", now/sec)
		}
	}
	if _, _, ok := tab.stacks.get(100, 7, 72*sec); !ok {
		t.Error("a retained process lost its blocking stacks")
	}
	tab.sweep(73 * sec)
	if _, ok := tab.byPID[100]; ok || known[100] || tab.stacks.len() != 0 {
		t.Errorf("70 s after its exit the process is still there (known %v, %d stacks)", known[100], tab.stacks.len())
	}
}

// TestProcessGoneWithoutExit: without an exit event, a process not seen in
// an interval whose pid is gone counts as exited from then on.
func TestProcessGoneWithoutExit(t *testing.T) {
	tab, fp, _ := newTestTable(t, 70*time.Second)
	fp.put(200, "w", 5, 0x10000)
	tab.observe(200, "w", 1*sec, []uint64{0x10010})
	fp.remove(200)
	tab.sweep(10 * sec) // sampled in this interval: kept, not checked
	tab.sweep(20 * sec) // gone: exited at 20 s, last seen at 1 s
	if tab.byPID[200] == nil || tab.byPID[200].exited != 20*sec {
		t.Fatalf("process gone without an exit event: %+v, want kept and marked exited at 20 s", tab.byPID[200])
	}
	tab.sweep(71 * sec)
	if tab.len() != 0 {
		t.Errorf("process kept %d s after its last sample", 71-1)
	}
}

// TestProcessPIDReuse: user code under a pid after that pid's exit is a new
// process, read anew; kernel-only records after the exit (the exiting task's
// last context switch) are not.
func TestProcessPIDReuse(t *testing.T) {
	tab, fp, _ := newTestTable(t, 70*time.Second)
	fp.put(300, "old", 5, 0x10000)
	tab.observe(300, "old", 1*sec, []uint64{0x10010})
	tab.stacks.put(300, 9, []uint64{0x10010}, nil, 1*sec)
	tab.exit(&events.ProcEvent{Kind: events.KindExit, PID: 300, Time: 2 * sec})
	fp.put(300, "new", 6, 0x30000)
	if p := tab.observe(300, "", 2*sec+1, nil); p.labels[LabelComm] != "old" {
		t.Errorf("a kernel-only record after the exit replaced the process: %v", p.labels)
	}
	p := tab.observe(300, "new", 3*sec, []uint64{0x30010})
	if p.labels[LabelComm] != "new" || p.exited != 0 || !p.space.Contains(0x30010) {
		t.Errorf("reused pid: labels %v exited %d, want the new process", p.labels, p.exited)
	}
	if _, _, ok := tab.stacks.get(300, 9, 3*sec); ok {
		t.Error("the new process inherited the old one's stacks")
	}
}

// TestProcessRereadOnMiss: code outside the known mappings re-reads the
// process (once per interval); when the process is gone by then, what was
// read before stays. A process whose first read failed is read again.
func TestProcessRereadOnMiss(t *testing.T) {
	tab, fp, _ := newTestTable(t, 70*time.Second)
	fp.put(400, "early", 5, 0x10000) // read before its libraries were mapped
	tab.observe(400, "", 1*sec, []uint64{0x10010})
	fp.put(400, "w", 5, 0x50000)
	if p := tab.observe(400, "", 2*sec, []uint64{0x50010}); !p.space.Contains(0x50010) || p.labels[LabelComm] != "w" {
		t.Fatalf("code outside the known mappings did not re-read the process: %v", p.labels)
	}
	tab.sweep(3 * sec) // a new interval: another re-read is allowed
	fp.remove(400)
	p := tab.observe(400, "", 4*sec, []uint64{0x60010})
	if p.space == nil || !p.space.Contains(0x50010) || p.labels[LabelComm] != "w" {
		t.Errorf("a failed re-read lost what was known: labels %v", p.labels)
	}
	// A miss in a record taken before the last read cannot be helped by
	// reading again; one taken after it can.
	tab.sweep(5 * sec)
	tab.now = func() uint64 { return 10 * sec }
	fp.put(400, "x", 5, 0x90000)
	if p := tab.observe(400, "", 11*sec, []uint64{0x90010}); p.labels[LabelComm] != "x" {
		t.Fatalf("no re-read for a record taken after the last read: %v", p.labels)
	}
	fp.put(400, "y", 5, 0xa0000)
	if p := tab.observe(400, "", 9*sec, []uint64{0xa0010}); p.labels[LabelComm] != "x" {
		t.Errorf("re-read for a record older than the last read: %v", p.labels)
	}
	tab.now = func() uint64 { return 0 }

	// The first read fails (mid-exec, or gone); the next record retries.
	q := tab.observe(500, "x", 1*sec, []uint64{0x70010})
	if q.info != nil {
		t.Fatal("read a process that is not there")
	}
	tab.sweep(2 * sec)
	fp.put(500, "x", 5, 0x70000)
	if q := tab.observe(500, "x", 3*sec, []uint64{0x70010}); q.space == nil || !q.space.Contains(0x70010) {
		t.Error("a process whose read failed was not read again")
	}
}

func TestLoading(t *testing.T) {
	const exe = "/usr/bin/app"
	m := func(paths ...string) *procinfo.Process {
		p := &procinfo.Process{Exe: exe}
		for i, path := range paths {
			p.Mappings = append(p.Mappings, procinfo.Mapping{Path: path, Inode: uint64(i + 1)})
		}
		return p
	}
	for _, tt := range []struct {
		name string
		p    *procinfo.Process
		want bool
	}{
		{"loader only", m(exe, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "[vdso]"), true},
		{"musl loader only", m(exe, "/lib/ld-musl-x86_64.so.1"), true},
		{"libraries mapped", m(exe, "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), false},
		{"static", m(exe, "[vdso]"), false},
		{"a library named like the loader is not it", m(exe, "/usr/lib/libold-x.so"), false},
	} {
		if got := loading(tt.p); got != tt.want {
			t.Errorf("%s: loading = %v, want %v", tt.name, got, tt.want)
		}
	}
}
