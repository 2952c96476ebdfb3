package unwind

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flightrec/flightrec/agent/symbolize/elfsym"
)

const leafProgram = `#include <stdio.h>
int __attribute__((noinline)) leaf_fn(int *p, int n) {
	int s = 0;
	for (int i = 0; i < n; i++) s += p[i] * 3;
	return s;
}
int __attribute__((noinline)) early(int *p, int n) {
	if (n < 0) return -1;
	int a[8] = {0};
	for (int i = 0; i < n && i < 8; i++) a[i] = leaf_fn(p, i);
	return a[n & 7];
}
int __attribute__((noinline)) calls(int n) {
	int a[4] = {n, 2, 3, 4};
	return leaf_fn(a, 4) + early(a, n);
}
int main(int argc, char **argv) { printf("%d\n", calls(argc)); return 0; }
`

// insn is one instruction of objdump's disassembly.
type insn struct {
	off   uint64 // from the function's start
	words []string
}

// TestReturnSlotRealCode checks every instruction boundary of gcc-compiled
// functions against what objdump's disassembly says the stack holds there.
func TestReturnSlotRealCode(t *testing.T) {
	for _, tool := range []string{"gcc", "nm", "objdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	variants := map[string][]string{
		"O1":     {"-O1"},
		"O1-cet": {"-O1", "-fcf-protection=full"},
		"O2":     {"-O2"},
		"O0":     {"-O0"},
	}
	for name, flags := range variants {
		t.Run(name, func(t *testing.T) {
			bin := buildProgram(t, flags)
			data, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			f, err := elfsym.Open(data)
			if err != nil {
				t.Fatal(err)
			}
			funcs := nmFuncs(t, bin)
			checked, afterPush := 0, 0
			for _, fn := range []string{"leaf_fn", "early", "calls", "main"} {
				start, size, ok := lookupFunc(funcs, fn)
				if !ok {
					continue // inlined away at this level
				}
				code := f.Code(start, int(size))
				if uint64(len(code)) != size {
					t.Fatalf("Code(%s) = %d bytes, want %d", fn, len(code), size)
				}
				insns := disassemble(t, bin, fn, start)
				for _, in := range insns {
					slot, ok := ReturnSlotX86(code, in.off)
					wantSlot, wantOK := expectedSlot(in, insns)
					if slot != wantSlot || ok != wantOK {
						t.Errorf("%s+%#x %v: ReturnSlotX86 = %d, %v; want %d, %v", fn, in.off, in.words, slot, ok, wantSlot, wantOK)
					}
					checked++
					if wantSlot == 8 && wantOK {
						afterPush++
					}
				}
			}
			if checked == 0 || afterPush == 0 {
				t.Fatalf("checked %d instructions, %d right after push %%rbp: program changed?", checked, afterPush)
			}
		})
	}
}

func buildProgram(t *testing.T, flags []string) string {
	dir := t.TempDir()
	src := filepath.Join(dir, "leaf.c")
	if err := os.WriteFile(src, []byte(leafProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "leaf")
	args := append(append([]string{}, flags...), "-fno-omit-frame-pointer", "-o", bin, src)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

// expectedSlot derives the answer from the mnemonics: entry and just after
// endbr64 hold the return address at SP; right after push %rbp it is at
// SP+8; so it is at any ret. Elsewhere the bytes alone can't tell.
func expectedSlot(in insn, all []insn) (uint64, bool) {
	first := 0
	if len(all) > 0 && all[0].words[0] == "endbr64" {
		first = 1
	}
	i := 0
	for i < len(all) && all[i].off != in.off {
		i++
	}
	switch {
	case i <= first:
		return 0, true
	case i == first+1 && strings.Join(all[first].words, " ") == "push %rbp":
		return 8, true
	case isRetInsn(in.words):
		return 0, true
	}
	return 0, false
}

func isRetInsn(words []string) bool {
	for i, w := range words {
		if w == "ret" || w == "retq" {
			return true
		}
		if i > 0 || (w != "repz" && w != "rep" && w != "bnd") {
			return false
		}
	}
	return false
}

// disassemble returns the instructions of fn as objdump prints them.
func disassemble(t *testing.T, bin, fn string, start uint64) []insn {
	out, err := exec.Command("objdump", "-d", "--no-show-raw-insn", "--disassemble="+fn, bin).Output()
	if err != nil {
		t.Fatalf("objdump: %v", err)
	}
	var insns []insn
	for _, line := range strings.Split(string(out), "\n") {
		addr, text, ok := strings.Cut(line, ":\t")
		if !ok {
			continue
		}
		a, err := strconv.ParseUint(strings.TrimSpace(addr), 16, 64)
		if err != nil || a < start {
			continue
		}
		insns = append(insns, insn{off: a - start, words: strings.Fields(text)})
	}
	if len(insns) == 0 {
		t.Fatalf("objdump shows no instructions for %s", fn)
	}
	return insns
}

type funcSym struct{ addr, size uint64 }

func nmFuncs(t *testing.T, bin string) map[string]funcSym {
	out, err := exec.Command("nm", "-S", "--defined-only", bin).Output()
	if err != nil {
		t.Fatalf("nm: %v", err)
	}
	m := map[string]funcSym{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || (f[2] != "T" && f[2] != "t") {
			continue
		}
		addr, _ := strconv.ParseUint(f[0], 16, 64)
		size, _ := strconv.ParseUint(f[1], 16, 64)
		m[f[3]] = funcSym{addr, size}
	}
	return m
}

func lookupFunc(m map[string]funcSym, name string) (start, size uint64, ok bool) {
	s, ok := m[name]
	return s.addr, s.size, ok && s.size > 0
}
