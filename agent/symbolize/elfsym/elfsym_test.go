package elfsym

import (
	"bufio"
	"debug/elf"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const cProgram = `#include <stdio.h>
#include <stdlib.h>

static int __attribute__((noinline)) helper(int x) { return x * 3 + 1; }

int __attribute__((noinline)) compute(int n) {
	int s = 0;
	for (int i = 0; i < n; i++) s += helper(i);
	return s;
}

void __attribute__((noinline)) leaf(volatile int *p) { *p += 1; }

int main(int argc, char **argv) {
	volatile int v = 0;
	leaf(&v);
	printf("%p\n", (void *)compute);
	fflush(stdout);
	if (argc > 1) getchar(); /* lets a test read our /proc/PID/maps */
	return compute(argc) + v;
}
`

const cxxProgram = `#include <cstdio>
namespace ns {
class Class {
public:
	explicit Class(int v);
	~Class();
	int method(int x);
	double method(double x);
	Class operator+(const Class &o) const;
	int v;
};
Class::Class(int v) : v(v) { std::printf("ctor\n"); }
Class::~Class() { std::printf("dtor %d\n", v); }
int __attribute__((noinline)) Class::method(int x) { return v + x; }
double __attribute__((noinline)) Class::method(double x) { return v * x; }
Class __attribute__((noinline)) Class::operator+(const Class &o) const { return Class(v + o.v); }
} // namespace ns

template <typename T> __attribute__((noinline)) T twice(T x) { return x + x; }

int main(int argc, char **) {
	ns::Class a(argc), b(2);
	ns::Class c = a + b;
	return c.method(1) + (int)c.method(2.5) + twice(argc) + (int)twice(1.5);
}
`

func TestOpenRejects(t *testing.T) {
	hdr := func(mut func(b []byte)) []byte {
		b := make([]byte, 64)
		copy(b, "\x7fELF\x02\x01\x01")
		b[54], b[58] = 56, 64 // phentsize, shentsize
		mut(b)
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not ELF", []byte("#!/bin/sh\necho hi\n")},
		{"ident only", []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"bad class", hdr(func(b []byte) { b[4] = 9 })},
		{"bad data encoding", hdr(func(b []byte) { b[5] = 0 })},
		{"32-bit header truncated", hdr(func(b []byte) { b[4] = 1 })[:40]},
		{"program headers past end", hdr(func(b []byte) { b[32], b[56] = 0x40, 1 })},
		{"program header count overflow", hdr(func(b []byte) { b[32], b[56], b[57] = 0x40, 0xfe, 0xff })},
		{"wrong phentsize", hdr(func(b []byte) { b[32], b[54], b[56] = 0x0, 20, 1 })},
		{"section headers past end", hdr(func(b []byte) { b[40], b[60] = 0x40, 3 })},
		{"section offset huge", hdr(func(b []byte) { copy(b[40:], "\xf0\xff\xff\xff\xff\xff\xff\xff"); b[60] = 1 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := Open(tt.data); err == nil {
				t.Fatalf("Open succeeded: %+v", f)
			}
		})
	}
}

func TestCProgramAgainstNM(t *testing.T) {
	bin := compile(t, t.TempDir(), "gcc", "prog", cProgram)
	f := openFile(t, bin)
	if !f.HasSymtab() || !f.HasSymbols() || f.IsGo() || f.Machine() != elf.EM_X86_64 {
		t.Errorf("HasSymtab %v HasSymbols %v IsGo %v Machine %v", f.HasSymtab(), f.HasSymbols(), f.IsGo(), f.Machine())
	}
	syms := symbolsOf(t, f)
	want := nmText(t, bin)
	checkAgainstNM(t, syms, want)
	for _, name := range []string{"compute", "helper", "leaf", "main"} {
		if !hasName(want, name) {
			t.Errorf("nm lacks %s: test program changed?", name)
		}
	}
}

func TestCXXProgramAgainstNM(t *testing.T) {
	bin := compile(t, t.TempDir(), "g++", "prog", cxxProgram)
	syms := symbolsOf(t, openFile(t, bin))
	want := nmText(t, "-C", bin)
	checkAgainstNM(t, syms, want)
	for _, name := range []string{
		"ns::Class::method(int)", "ns::Class::method(double)", "ns::Class::Class(int)",
		"ns::Class::~Class()", "ns::Class::operator+(ns::Class const&) const", "int twice<int>(int)",
	} {
		if !hasName(want, name) {
			t.Errorf("nm -C lacks %q: test program or demangler changed?", name)
		}
	}
}

func hasName(syms []nmSym, name string) bool {
	for _, s := range syms {
		if s.name == name {
			return true
		}
	}
	return false
}

// TestELF32 covers the 32-bit layouts with a hand-written i386 program,
// which needs only binutils (no multilib C library).
func TestELF32(t *testing.T) {
	needTools(t, "as", "ld")
	dir := t.TempDir()
	src := filepath.Join(dir, "a.s")
	asm := ".text\n.globl _start\n.type _start,@function\n_start: call f1\n call f2\n ret\n.size _start,.-_start\n" +
		".type f1,@function\nf1: push %ebp\n mov %esp,%ebp\n pop %ebp\n ret\n.size f1,.-f1\n" +
		"f2: nop\n nop\n ret\n" // untyped and size-less, like much hand-written assembly
	if err := os.WriteFile(src, []byte(asm), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "as", "--32", "-o", filepath.Join(dir, "a.o"), src)
	bin := filepath.Join(dir, "a32")
	run(t, "ld", "-m", "elf_i386", "--build-id", "-o", bin, filepath.Join(dir, "a.o"))
	f := openFile(t, bin)
	if f.Machine() != elf.EM_386 || f.BuildID() != readelfBuildID(t, bin) {
		t.Errorf("Machine %v BuildID %q", f.Machine(), f.BuildID())
	}
	checkAgainstNM(t, symbolsOf(t, f), nmText(t, bin))
}

var buildIDRe = regexp.MustCompile(`Build ID: ([0-9a-f]+)`)

func readelfBuildID(t *testing.T, path string) string {
	m := buildIDRe.FindStringSubmatch(run(t, "readelf", "-n", path))
	if m == nil {
		return ""
	}
	return m[1]
}

func TestBuildID(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		flags []string
	}{
		{"sha1", []string{"-Wl,--build-id=sha1"}},
		{"md5", []string{"-Wl,--build-id=md5"}},
		{"none", []string{"-Wl,--build-id=none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := compile(t, dir, "gcc", tt.name, cProgram, tt.flags...)
			want := readelfBuildID(t, bin)
			if got := openFile(t, bin).BuildID(); got != want {
				t.Errorf("BuildID = %q, readelf says %q", got, want)
			}
			if (want == "") != (tt.name == "none") {
				t.Errorf("readelf build ID %q for %s", want, tt.name)
			}
		})
	}
}

var loadRe = regexp.MustCompile(`(?m)^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)`)

// TestFileOffsetToVaddr checks a PIE binary's segments against readelf -l.
func TestFileOffsetToVaddr(t *testing.T) {
	bin := compile(t, t.TempDir(), "gcc", "pie", cProgram, "-pie", "-fPIE")
	f := openFile(t, bin)
	if f.Type() != elf.ET_DYN {
		t.Fatalf("Type = %v, want ET_DYN for PIE", f.Type())
	}
	loads := loadRe.FindAllStringSubmatch(run(t, "readelf", "-lW", bin), -1)
	if len(loads) < 2 {
		t.Fatalf("readelf shows %d LOAD segments", len(loads))
	}
	for _, m := range loads {
		off, _ := strconv.ParseUint(m[1], 16, 64)
		vaddr, _ := strconv.ParseUint(m[2], 16, 64)
		filesz, _ := strconv.ParseUint(m[3], 16, 64)
		for _, d := range []uint64{0, filesz / 2, filesz - 1} {
			if got, ok := f.FileOffsetToVaddr(off + d); !ok || got != vaddr+d {
				t.Errorf("FileOffsetToVaddr(%#x) = %#x, %v; want %#x", off+d, got, ok, vaddr+d)
			}
		}
	}
	if _, ok := f.FileOffsetToVaddr(1 << 40); ok {
		t.Error("FileOffsetToVaddr past the file succeeded")
	}
}

// TestRunningProcess symbolizes a live PIE process's function address the way
// the agent does: runtime address -> /proc/PID/maps file offset -> vaddr.
func TestRunningProcess(t *testing.T) {
	bin := compile(t, t.TempDir(), "gcc", "live", cProgram)
	cmd := exec.Command(bin, "wait")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pc, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "0x")), 16, 64)
	if err != nil {
		t.Fatalf("program printed %q", line)
	}
	off := mapsOffset(t, cmd.Process.Pid, pc)
	f := openFile(t, bin)
	vaddr, ok := f.FileOffsetToVaddr(off)
	if !ok {
		t.Fatalf("FileOffsetToVaddr(%#x) failed", off)
	}
	if name, _, ok := symbolsOf(t, f).Lookup(vaddr); !ok || name != "compute" {
		t.Errorf("Lookup(%#x) = %q, %v; want compute", vaddr, name, ok)
	}
}

// mapsOffset returns pc's file offset in its mapping: addr - start + pgoff.
func mapsOffset(t *testing.T, pid int, pc uint64) uint64 {
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(maps), "\n") {
		var start, end, pgoff uint64
		var perms string
		if _, err := fmt.Sscanf(line, "%x-%x %s %x", &start, &end, &perms, &pgoff); err == nil && pc >= start && pc < end {
			return pc - start + pgoff
		}
	}
	t.Fatalf("%#x not mapped in pid %d", pc, pid)
	return 0
}

const libSource = `static int __attribute__((noinline)) hidden(int x) { return x * 7; }
int exported_one(int x) { return hidden(x) + 1; }
int exported_two(int x) { return hidden(x) * 2; }
`

// TestStrippedUsesDynsym checks that a stripped library still resolves its
// exported functions through .dynsym, and only those.
func TestStrippedUsesDynsym(t *testing.T) {
	dir := t.TempDir()
	lib := compile(t, dir, "gcc", "libdemo.so", libSource, "-shared", "-fPIC")
	stripped := lib + ".stripped"
	run(t, "strip", "-o", stripped, lib)
	f := openFile(t, stripped)
	if f.HasSymtab() || !f.HasSymbols() {
		t.Fatalf("stripped: HasSymtab %v, HasSymbols %v", f.HasSymtab(), f.HasSymbols())
	}
	syms := symbolsOf(t, f)
	want := nmText(t, "-D", stripped)
	checkAgainstNM(t, syms, want)
	if !hasName(want, "exported_one") || !hasName(want, "exported_two") {
		t.Errorf("nm -D lacks the exported functions: %v", want)
	}
	for _, s := range nmText(t, lib) {
		if s.name == "hidden" {
			if name, _, ok := syms.Lookup(s.addr); ok && name == "hidden" {
				t.Errorf("static function resolved from .dynsym")
			}
		}
	}
}

// TestSeparateDebugFile strips a binary into a debug file placed under a fake
// root, finds it through DebugFileCandidates and resolves its symbols.
func TestSeparateDebugFile(t *testing.T) {
	needTools(t, "objcopy")
	for _, withBuildID := range []bool{true, false} {
		t.Run(fmt.Sprintf("buildid=%v", withBuildID), func(t *testing.T) {
			dir := t.TempDir()
			flag := "-Wl,--build-id=sha1"
			if !withBuildID {
				flag = "-Wl,--build-id=none"
			}
			bin := compile(t, dir, "gcc", "prog", cProgram, flag)
			debug := filepath.Join(dir, "prog.debug")
			run(t, "objcopy", "--only-keep-debug", bin, debug)
			stripped := filepath.Join(dir, "prog.stripped")
			run(t, "objcopy", "--strip-all", "--add-gnu-debuglink="+debug, bin, stripped)

			main := openFile(t, stripped)
			name, crc, ok := main.DebugLink()
			debugData, _ := os.ReadFile(debug)
			if !ok || name != "prog.debug" || crc != crc32.ChecksumIEEE(debugData) {
				t.Fatalf("DebugLink = %q, %#x, %v", name, crc, ok)
			}
			root := filepath.Join(dir, "root")
			placed := placeDebugFile(t, root, main.BuildID(), debugData)
			cands := DebugFileCandidates(root, "/usr/bin/prog", main.BuildID(), name)
			found := firstExisting(cands)
			if found != placed {
				t.Fatalf("candidates %q: found %q, want %q", cands, found, placed)
			}
			df := openFile(t, found)
			if !DebugFileMatches(main, df) {
				t.Error("DebugFileMatches = false for the real debug file")
			}
			if DebugFileMatches(main, openFile(t, bin)) != withBuildID {
				t.Error("DebugFileMatches: the unstripped binary matches only by build ID")
			}
			checkAgainstNM(t, symbolsOf(t, df), nmText(t, bin))
			if df.Code(nmAddr(t, bin, "compute"), 4) != nil {
				t.Error("Code read from a debug file, whose code sections are NOBITS")
			}
		})
	}
}

// placeDebugFile puts the debug file where the build ID, or else the
// debuglink, says it should be under root.
func placeDebugFile(t *testing.T, root, buildID string, data []byte) string {
	p := filepath.Join(root, "usr/bin/.debug/prog.debug")
	if buildID != "" {
		p = filepath.Join(root, "usr/lib/debug/.build-id", buildID[:2], buildID[2:]+".debug")
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func firstExisting(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func nmAddr(t *testing.T, bin, name string) uint64 {
	for _, s := range nmText(t, bin) {
		if s.name == name {
			return s.addr
		}
	}
	t.Fatalf("nm: no %s in %s", name, bin)
	return 0
}

func TestDebugFileCandidates(t *testing.T) {
	const id = "ABcdef0123"
	tests := []struct {
		name                      string
		root, path, buildID, link string
		want                      []string
	}{
		{"both", "/proc/42/root", "/usr/bin/prog", id, "prog.debug", []string{
			"/proc/42/root/usr/lib/debug/.build-id/ab/cdef0123.debug",
			"/proc/42/root/usr/bin/prog.debug",
			"/proc/42/root/usr/bin/.debug/prog.debug",
			"/proc/42/root/usr/lib/debug/usr/bin/prog.debug",
		}},
		{"host root", "", "/lib/libc.so.6", "", "libc.debug", []string{
			"/lib/libc.debug", "/lib/.debug/libc.debug", "/usr/lib/debug/lib/libc.debug",
		}},
		{"build ID only", "/r", "/bin/x", id, "", []string{"/r/usr/lib/debug/.build-id/ab/cdef0123.debug"}},
		{"nothing", "/r", "/bin/x", "", "", nil},
		{"non-hex build ID", "/r", "/bin/x", "../../etc", "", nil},
		{"one-byte build ID", "/r", "/bin/x", "ab", "", nil},
		{"link with slash", "/r", "/bin/x", "", "../../etc/shadow", nil},
		{"link dot-dot", "/r", "/bin/x", "", "..", nil},
		{"path climbs out", "/r", "/../../etc/x", "", "x.debug", []string{
			"/r/etc/x.debug", "/r/etc/.debug/x.debug", "/r/usr/lib/debug/etc/x.debug",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DebugFileCandidates(tt.root, tt.path, tt.buildID, tt.link)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestCode compares Code with the section bytes debug/elf reads.
func TestCode(t *testing.T) {
	bin := compile(t, t.TempDir(), "gcc", "prog", cProgram)
	f := openFile(t, bin)
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	text := ef.Section(".text")
	want, err := text.Data()
	if err != nil {
		t.Fatal(err)
	}
	addr := nmAddr(t, bin, "compute")
	off := addr - text.Addr
	if got := f.Code(addr, 16); string(got) != string(want[off:off+16]) {
		t.Errorf("Code(%#x, 16) = % x, want % x", addr, got, want[off:off+16])
	}
	end := text.Addr + text.Size
	if got := f.Code(end-2, 16); string(got) != string(want[len(want)-2:]) {
		t.Errorf("Code at the end of .text = % x, want the last 2 bytes", got)
	}
	for _, bad := range []uint64{0, 1 << 62, ^uint64(0)} {
		if got := f.Code(bad, 16); got != nil {
			t.Errorf("Code(%#x) = % x, want nil", bad, got)
		}
	}
	if got := f.Code(addr, 0); got != nil {
		t.Errorf("Code(n=0) = % x", got)
	}
}

const goProgram = `package main

//go:noinline
func work(n int) int { return n * 3 }

func main() { println(work(2)) }
`

// TestGoBinary builds a Go program with its symbol table (go test and go
// run link with -s) and checks Go identity and symbols against nm.
func TestGoBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	needTools(t, "go")
	dir := t.TempDir()
	for name, src := range map[string]string{"go.mod": "module gotest\n", "main.go": goProgram} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "gobin")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f := openFile(t, bin)
	if !f.IsGo() || !f.HasSymtab() {
		t.Errorf("IsGo = %v, HasSymtab = %v", f.IsGo(), f.HasSymtab())
	}
	if want := strings.TrimSpace(run(t, "go", "tool", "buildid", bin)); f.GoBuildID() != want {
		t.Errorf("GoBuildID = %q, go tool buildid says %q", f.GoBuildID(), want)
	}
	want := nmText(t, bin)
	checkAgainstNM(t, symbolsOf(t, f), want)
	if !hasName(want, "main.work") {
		t.Error("nm lacks main.work")
	}
}

// TestGoTestBinary checks that this stripped test binary is still seen as Go.
func TestGoTestBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if f := openFile(t, exe); !f.IsGo() || f.GoBuildID() == "" {
		t.Errorf("IsGo = %v, GoBuildID = %q", f.IsGo(), f.GoBuildID())
	}
}

func TestDemangle(t *testing.T) {
	tests := []struct{ in, want string }{
		// C++ (Itanium), as c++filt and perf show them.
		{"_ZN2ns5Class6methodEi", "ns::Class::method(int)"},
		{"_ZN2ns5Class6methodEd", "ns::Class::method(double)"},
		{"_ZNK2ns5ClassplERKS0_", "ns::Class::operator+(ns::Class const&) const"},
		{"_ZN2ns5ClassC2Ei", "ns::Class::Class(int)"},
		{"_ZN2ns5ClassD1Ev", "ns::Class::~Class()"},
		{"_ZNSt6vectorIiSaIiEE9push_backERKi", "std::vector<int, std::allocator<int> >::push_back(int const&)"},
		{"_Z5twiceIiET_S0_", "int twice<int>(int)"},
		{"_ZN2ns5ClassixEm", "ns::Class::operator[](unsigned long)"},
		{"_ZN12_GLOBAL__N_14implEv", "(anonymous namespace)::impl()"},
		{"_Z3fooi.cold", "foo(int) [clone .cold]"},
		{"_Z3fooi.isra.0", "foo(int) [clone .isra.0]"},
		{"_Z3fooi.constprop.0.isra.0", "foo(int) [clone .constprop.0] [clone .isra.0]"},
		// Rust legacy: the hash suffix goes, escapes are decoded.
		{"_ZN4core3fmt5write17h9a5f6a7b8c9d0e1fE", "core::fmt::write"},
		{"_ZN1r5Point4norm17h0dad5c79781d3156E", "r::Point::norm"},
		{"_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17ha86af84d9cc65291E", "std::rt::lang_start::{{closure}}"},
		{"_ZN4core3fmt5write17h9a5f6a7b8c9d0e1fE.llvm.123456", "core::fmt::write"},
		// Rust v0.
		{"_RNvNtCsgEmfK2I1SDS_4core3fmt5write", "core::fmt::write"},
		{"_RINvCs6GmmlP4bgsG_1r7genericReEB2_", "r::generic::<&str>"},
		{"_RNvMCs6GmmlP4bgsG_1rNtB2_5Point4norm", "<r::Point>::norm"},
		{"_RNCINvNtCsjrHSEGnQ3l9_3std2rt10lang_startuE0Cs6GmmlP4bgsG_1r", "std::rt::lang_start::<()>::{closure#0}"},
		// Everything else is unchanged.
		{"main", "main"},
		{"runtime.mallocgc", "runtime.mallocgc"},
		{"", ""},
		{"_Z", "_Z"},
		{"_ZZZ", "_ZZZ"},
		{"_R", "_R"},
		{"_Zfoo", "_Zfoo"},
		{"_ZN" + strings.Repeat("1a", 5000) + "E", "_ZN" + strings.Repeat("1a", 5000) + "E"},
	}
	for _, tt := range tests {
		if got := Demangle(tt.in); got != tt.want {
			t.Errorf("Demangle(%.60q) = %.80q, want %.80q", tt.in, got, tt.want)
		}
	}
}
