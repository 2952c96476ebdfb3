package procinfo

import (
	"bufio"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// Field 9 is flags (0x200000 = PF_KTHREAD), field 22 start time.
	user := "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 98765 1000 50"
	kthread := "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0"
	tests := []struct {
		in         string
		comm       string
		start      uint64
		kernel, ok bool
	}{
		{user, "my (odd) prog", 98765, false, true},
		{kthread, "kthreadd", 3, true, true},
		{"1234 no-parens S 1", "", 0, false, false},
		{"1234 (x) S 1 2 3", "", 0, false, false},
	}
	for _, tt := range tests {
		comm, start, kernel, err := parseStat([]byte(tt.in))
		if (err == nil) != tt.ok || comm != tt.comm || start != tt.start || kernel != tt.kernel {
			t.Errorf("parseStat(%q) = %q, %d, %v, %v", tt.in, comm, start, kernel, err)
		}
	}
}

func TestParseMaps(t *testing.T) {
	in := `55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 247278                     /usr/bin/my prog
55d0c0a02000-55d0c0a08000 r-xp 00002000 fe:00 247278                     /usr/bin/my prog
7f0000000000-7f0000100000 rw-p 00000000 00:00 0 
7f1000000000-7f1000200000 r-xp 00028000 103:02 1311 /usr/lib/libc.so.6 (deleted)
7ffd5a1f0000-7ffd5a1f2000 r-xp 00000000 00:00 0                          [vdso]
`
	ms, err := parseMaps([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Start: 0x55d0c0a02000, End: 0x55d0c0a08000, Offset: 0x2000, Dev: 0xfe00, Inode: 247278, Path: "/usr/bin/my prog"},
		{Start: 0x7f1000000000, End: 0x7f1000200000, Offset: 0x28000, Dev: 0x10302, Inode: 1311, Path: "/usr/lib/libc.so.6"},
		{Start: 0x7ffd5a1f0000, End: 0x7ffd5a1f2000, Path: "[vdso]"},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d mappings %+v, want %d", len(ms), ms, len(want))
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("mapping %d = %+v, want %+v", i, ms[i], want[i])
		}
	}
	if !ms[1].FileBacked() || ms[2].FileBacked() {
		t.Errorf("FileBacked wrong: libc %v vdso %v", ms[1].FileBacked(), ms[2].FileBacked())
	}
	for _, bad := range []string{"zz-10 r-xp 0 fe:00 1 /x", "10-20 r-xp 0 fe 1 /x", "10 r-xp 0 fe:00 1", "20-10 r-xp 0 fe:00 1 /x"} {
		if _, err := parseMaps([]byte(bad)); err == nil {
			t.Errorf("parseMaps(%q) accepted a malformed line", bad)
		}
	}
	p := Process{Mappings: ms}
	if m, ok := p.Find(0x7f1000000010); !ok || m.Path != "/usr/lib/libc.so.6" {
		t.Errorf("Find in libc = %+v, %v", m, ok)
	}
	if _, ok := p.Find(0x7f1000200000); ok {
		t.Errorf("Find at a mapping's end must miss")
	}
}

func TestParseEnviron(t *testing.T) {
	env := parseEnviron([]byte("PATH=/bin\x00OTEL_RESOURCE_ATTRIBUTES=service.name=fromattrs, service.version=1.8.2,deployment.environment=prod,k8s.pod.name=api-7d9%2Cx,bad\x00OTEL_SERVICE_NAME=checkout\x00"))
	if got := env.Attribute("service.name"); got != "checkout" {
		t.Errorf("service.name = %q: OTEL_SERVICE_NAME must win", got)
	}
	want := map[string]string{"service.name": "fromattrs", "service.version": "1.8.2", "deployment.environment": "prod", "k8s.pod.name": "api-7d9,x"}
	if !maps.Equal(env.Attributes, want) {
		t.Errorf("attributes = %v, want %v", env.Attributes, want)
	}
}

func TestParseCgroup(t *testing.T) {
	id := strings.Repeat("ab12", 16)
	tests := []struct{ name, in, path, container string }{
		{"host v1", "4:memory:/process_api/99\n0::/\n", "/", ""},
		{"docker v2", "0::/system.slice/docker-" + id + ".scope\n", "/system.slice/docker-" + id + ".scope", id},
		{"docker v1", "12:pids:/docker/" + id + "\n", "/docker/" + id, id},
		{"kubepods containerd", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + id + ".scope\n", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + id + ".scope", id},
		{"kubepods cgroupfs", "0::/kubepods/besteffort/pod5678/" + id + "\n", "/kubepods/besteffort/pod5678/" + id, id},
		{"crio", "0::/machine.slice/crio-" + id + ".scope\n", "/machine.slice/crio-" + id + ".scope", id},
		{"podman", "0::/user.slice/libpod-" + id + ".scope/container\n", "/user.slice/libpod-" + id + ".scope/container", id},
		{"too short", "0::/docker/abc123\n", "/docker/abc123", ""},
	}
	for _, tt := range tests {
		path, c := parseCgroup([]byte(tt.in))
		if path != tt.path || c != tt.container {
			t.Errorf("%s: parseCgroup = %q, %q; want %q, %q", tt.name, path, c, tt.path, tt.container)
		}
	}
}

func TestMain(m *testing.M) {
	if os.Getenv("PROCINFO_TEST_CHILD") == "1" {
		os.Stdout.WriteString("ready\n")
		time.Sleep(30 * time.Second)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestReadLive reads a child process started with OpenTelemetry settings.
// The child says when it runs: until the ELF loader has finished, exec'd
// processes show an empty environment (the parent is released earlier).
func TestReadLive(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "PROCINFO_TEST_CHILD=1", "OTEL_SERVICE_NAME=sleeper", "OTEL_RESOURCE_ATTRIBUTES=service.version=2.0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	p, err := Reader{}.Read(uint32(cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	sleepPath, _ := filepath.EvalSymlinks(self)
	if p.Comm != filepath.Base(self)[:min(15, len(filepath.Base(self)))] || p.Exe != sleepPath || p.Kernel || p.StartTime == 0 {
		t.Errorf("read %+v, want exe %s", p, sleepPath)
	}
	if p.Env.Attribute("service.name") != "sleeper" || p.Env.Attribute("service.version") != "2.0" {
		t.Errorf("env = %+v", p.Env)
	}
	var sawExe bool
	for _, m := range p.Mappings {
		sawExe = sawExe || m.Path == sleepPath
	}
	if !sawExe {
		t.Errorf("no executable mapping of %s in %+v", sleepPath, p.Mappings)
	}

	cmd.Process.Kill()
	cmd.Wait()
	if _, err := (Reader{}).Read(uint32(cmd.Process.Pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading a reaped process: %v, want ErrNotExist", err)
	}
}

func TestReadKernelThread(t *testing.T) {
	p, err := Reader{}.Read(2) // kthreadd
	if err != nil {
		t.Skipf("no kthreadd as pid 2 here: %v", err)
	}
	if !p.Kernel || p.Exe != "" || len(p.Mappings) != 0 {
		t.Errorf("kthreadd read as %+v, want a kernel thread without mappings", p)
	}
}
