package elfsym

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// run runs a tool and returns its standard output, failing the test on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, msg)
	}
	return string(out)
}

func needTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed", n)
		}
	}
}

// compile writes src to dir and builds it with cc (gcc or g++).
func compile(t testing.TB, dir, cc, name, src string, flags ...string) string {
	t.Helper()
	needTools(t, cc)
	ext := ".c"
	if cc == "g++" {
		ext = ".cc"
	}
	srcPath := filepath.Join(dir, name+ext)
	if err := os.WriteFile(srcPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := append([]string{"-O1", "-fno-omit-frame-pointer", "-o", out, srcPath}, flags...)
	run(t, cc, args...)
	return out
}

func openFile(t testing.TB, path string) *File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(data)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return f
}

func symbolsOf(t testing.TB, f *File) *Symbols {
	t.Helper()
	s, err := f.Symbols()
	if err != nil {
		t.Fatalf("Symbols: %v", err)
	}
	return s
}

// nmSym is one symbol as nm reports it.
type nmSym struct {
	addr, size uint64
	name       string
}

// nmText returns the code symbols nm reports: functions, and untyped
// symbols in code sections, as Symbols indexes them. The System V format
// names each symbol's type and section; the name may itself contain '|'.
func nmText(t testing.TB, args ...string) []nmSym {
	t.Helper()
	var syms []nmSym
	out := run(t, "nm", append([]string{"-f", "sysv", "-S", "--defined-only"}, args...)...)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "|")
		if len(f) < 7 {
			continue
		}
		f, name := f[len(f)-6:], strings.TrimSpace(strings.Join(f[:len(f)-6], "|"))
		addr, err := strconv.ParseUint(f[0], 16, 64)
		typ, sect := strings.TrimSpace(f[2]), strings.TrimSpace(f[5])
		code := strings.HasSuffix(typ, "FUNC") ||
			typ == "NOTYPE" && (strings.HasPrefix(sect, ".text") || sect == ".init" || sect == ".fini")
		if err != nil || addr == 0 || !code {
			continue
		}
		size, _ := strconv.ParseUint(strings.TrimSpace(f[3]), 16, 64)
		syms = append(syms, nmSym{addr: addr, size: size, name: name})
	}
	return syms
}

// checkAgainstNM asserts that every code symbol nm lists resolves, at its
// start and in its middle, to one of the names nm gives that address.
func checkAgainstNM(t *testing.T, syms *Symbols, want []nmSym) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("nm listed no code symbols")
	}
	aliases := map[uint64][]string{}
	for _, s := range want {
		aliases[s.addr] = append(aliases[s.addr], s.name)
	}
	for _, s := range want {
		probes := []uint64{s.addr}
		if s.size > 1 {
			probes = append(probes, s.addr+s.size/2, s.addr+s.size-1)
		}
		for _, pc := range probes {
			name, start, ok := syms.Lookup(pc)
			if !ok || start != s.addr || !slices.Contains(aliases[s.addr], name) {
				t.Errorf("Lookup(%#x) = %q, %#x, %v; want one of %q at %#x", pc, name, start, ok, aliases[s.addr], s.addr)
			}
		}
	}
}
