package gopclntab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The tests in this file build testdata/selfreport with every Go toolchain
// found (this one, plus e.g. Debian's /usr/lib/go-1.19) in several ways,
// run it, and compare what its runtime reports with what we read from
// the file.

type toolchain struct {
	name  string // e.g. "go1.26.1"
	goBin string
}

// toolchains lists the go commands to build with: the one running the
// tests and any /usr/lib/go-1.N, or GOPCLNTAB_TEST_GO (a list separated
// by the OS's path list separator).
func toolchains(t *testing.T) []toolchain {
	var cands []string
	if goBin, err := exec.LookPath("go"); err == nil { // go test puts its own first
		cands = append(cands, goBin)
	}
	more, _ := filepath.Glob("/usr/lib/go-1.*/bin/go")
	cands = append(cands, more...)
	cands = append(cands, filepath.SplitList(os.Getenv("GOPCLNTAB_TEST_GO"))...)
	var out []toolchain
	seen := map[string]bool{}
	for _, goBin := range cands {
		out1, err := exec.Command(goBin, "env", "GOVERSION").Output()
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(out1))
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, toolchain{name: v, goBin: goBin})
	}
	if len(out) == 0 {
		t.Skip("no go command found")
	}
	t.Logf("building with %v (install e.g. Debian's golang-1.19-go to also cover the Go 1.18/1.19 format)", out)
	return out
}

type variant struct {
	name  string
	flags []string
	cgo   bool
}

var variants = []variant{
	{name: "exe"},
	{name: "stripped", flags: []string{"-ldflags=-s -w"}},
	{name: "pie", flags: []string{"-buildmode=pie"}},
	{name: "pie-stripped", flags: []string{"-buildmode=pie", "-ldflags=-s -w"}},
	{name: "external-pie-stripped", flags: []string{"-buildmode=pie", "-ldflags=-linkmode=external -s -w"}, cgo: true},
}

// build compiles testdata/selfreport with tc into dir and returns the path.
func build(t *testing.T, tc toolchain, v variant, dir string) (string, error) {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	prog, err := os.ReadFile("testdata/selfreport/main.go")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"main.go": string(prog), "go.mod": "module selfreport\n\ngo 1.19\n"}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, v.name)
	cmd := exec.Command(tc.goBin, append(append([]string{"build", "-o", out}, v.flags...), ".")...)
	cmd.Dir = src
	cgo := "0"
	if v.cgo {
		cgo = "1"
	}
	cmd.Env = append(withoutGoEnv(os.Environ()), "GOTOOLCHAIN=local", "GOFLAGS=", "CGO_ENABLED="+cgo,
		"GOROOT="+filepath.Dir(filepath.Dir(tc.goBin)))
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %v\n%s", cmd.Args, err, msg)
	}
	return out, nil
}

func withoutGoEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOROOT=") && !strings.HasPrefix(kv, "GOTOOLCHAIN=") {
			out = append(out, kv)
		}
	}
	return out
}

// report is what selfreport prints about itself.
type report struct {
	anchorName  string
	anchorEntry uint64
	stacks      []reportStack
}

type reportStack struct {
	pcs    []uintptr
	frames []Frame
}

func runReport(t *testing.T, bin string) report {
	t.Helper()
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	var r report
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		var err error
		switch kind {
		case "anchor":
			name, entry, _ := strings.Cut(rest, " ")
			r.anchorName = name
			r.anchorEntry, err = strconv.ParseUint(entry, 0, 64)
		case "stack":
			r.stacks = append(r.stacks, reportStack{})
		case "pc":
			var pc uint64
			pc, err = strconv.ParseUint(rest, 0, 64)
			s := &r.stacks[len(r.stacks)-1]
			s.pcs = append(s.pcs, uintptr(pc))
		case "frame":
			parts := strings.Split(rest, "\t")
			var line int
			line, err = strconv.Atoi(parts[len(parts)-1])
			s := &r.stacks[len(r.stacks)-1]
			s.frames = append(s.frames, Frame{Function: parts[0], File: parts[1], Line: line})
		}
		if err != nil {
			t.Fatalf("parse %q: %v", sc.Text(), err)
		}
	}
	if r.anchorName == "" || len(r.stacks) != 4 {
		t.Fatalf("unexpected selfreport output:\n%s", out)
	}
	return r
}

func openFile(t *testing.T, path string) (*Table, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := Open(data)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return tab, data
}

// checkReport compares every stack selfreport printed with tab, whose
// binary ran at a load bias found from the anchor function.
func checkReport(t *testing.T, tab *Table, r report) {
	t.Helper()
	entry, ok := funcByName(tab, r.anchorName)
	if !ok {
		t.Fatalf("anchor %s not found", r.anchorName)
	}
	bias := r.anchorEntry - entry
	for i, s := range r.stacks {
		got := tableFrames(t, tab, s.pcs, bias)
		if !reflect.DeepEqual(got, s.frames) {
			t.Errorf("stack %d:\ngot:  %q\nwant: %q", i, frameStrings(got), frameStrings(s.frames))
		}
	}
	// outer -> mid -> leaf are inlined: the call to capture in outer
	// must show three frames (an inline depth of two).
	if got := tab.Frames(uint64(r.stacks[0].pcs[0])-bias-1, nil); len(got) != 3 {
		t.Errorf("first PC of stack 0 has frames %q, want leaf, mid, outer", frameStrings(got))
	}
}

func TestBuiltBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs")
	}
	for _, tc := range toolchains(t) {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bins := map[string]string{}
			for _, v := range variants {
				t.Run(v.name, func(t *testing.T) {
					bin, err := build(t, tc, v, dir)
					if err != nil && v.cgo {
						t.Skipf("cannot link externally here: %v", err)
					}
					if err != nil {
						t.Fatal(err)
					}
					bins[v.name] = bin
					tab, _ := openFile(t, bin)
					checkReport(t, tab, runReport(t, bin))
					checkNamedFuncs(t, tab)
				})
			}
			testGosym(t, bins)
			testStrippedMatches(t, bins)
			testMutilated(t, bins)
			testSPDelta(t, tc, bins["exe"])
		})
	}
}

// checkNamedFuncs checks that functions are found by name and address even
// in stripped binaries, which have no symbol table to fall back on.
func checkNamedFuncs(t *testing.T, tab *Table) {
	t.Helper()
	for _, name := range []string{"main.main", "main.outer", "main.capture", "main.spfunc", "runtime.main"} {
		entry, ok := funcByName(tab, name)
		if !ok {
			t.Errorf("%s not in the table", name)
			continue
		}
		if e, n, ok := tab.FuncEntry(entry + 1); !ok || e != entry || n != name {
			t.Errorf("FuncEntry(%s+1) = %#x, %q, %v; want %#x", name, e, n, ok, entry)
		}
	}
}

// testStrippedMatches checks that -s -w (which leaves text alone but drops
// the symbols we could otherwise lean on) changes nothing we report.
func testStrippedMatches(t *testing.T, bins map[string]string) {
	for full, stripped := range map[string]string{"exe": "stripped", "pie": "pie-stripped"} {
		if bins[full] == "" || bins[stripped] == "" {
			continue
		}
		t.Run(stripped+"-vs-"+full, func(t *testing.T) {
			a, _ := openFile(t, bins[full])
			b, _ := openFile(t, bins[stripped])
			compareTables(t, a, b)
		})
	}
}

func compareTables(t *testing.T, a, b *Table) {
	t.Helper()
	as, ae := a.TextRange()
	bs, be := b.TextRange()
	if as != bs || ae != be || a.NumFuncs() != b.NumFuncs() {
		t.Fatalf("text [%#x,%#x) %d funcs vs [%#x,%#x) %d funcs", as, ae, a.NumFuncs(), bs, be, b.NumFuncs())
	}
	for i := 0; i < a.NumFuncs(); i++ {
		f, _ := a.funcAt(i)
		for _, pc := range samplePCs(f.entry, f.end, 8) {
			fa, fb := a.Frames(pc, nil), b.Frames(pc, nil)
			if !reflect.DeepEqual(fa, fb) {
				t.Fatalf("pc %#x: %q vs %q", pc, frameStrings(fa), frameStrings(fb))
			}
			da, oka := a.SPDelta(pc)
			db, okb := b.SPDelta(pc)
			if da != db || oka != okb {
				t.Fatalf("SPDelta(%#x): %d,%v vs %d,%v", pc, da, oka, db, okb)
			}
		}
	}
}
