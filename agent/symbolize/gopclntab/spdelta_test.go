package gopclntab

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

type instr struct {
	addr uint64
	asm  string
}

// disassemble returns the instructions of fn in bin, per go tool objdump.
func disassemble(t *testing.T, tc toolchain, bin, fn string) []instr {
	t.Helper()
	out, err := exec.Command(tc.goBin, "tool", "objdump", "-s", "^"+strings.ReplaceAll(fn, ".", `\.`)+"$", bin).Output()
	if err != nil {
		t.Fatalf("objdump: %v", err)
	}
	var ins []instr
	for _, line := range strings.Split(string(out), "\n") {
		// "  main.go:57\t0x4a0520\t\t493b6610\t\tCMPQ SP, 0x10(R14)\t"
		var fields []string
		for _, f := range strings.Split(line, "\t") {
			if f = strings.TrimSpace(f); f != "" {
				fields = append(fields, f)
			}
		}
		if len(fields) < 4 || !strings.HasPrefix(fields[1], "0x") {
			continue
		}
		addr, err := strconv.ParseUint(fields[1], 0, 64)
		if err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		ins = append(ins, instr{addr, fields[3]})
	}
	if len(ins) == 0 {
		t.Fatalf("no instructions for %s in:\n%s", fn, out)
	}
	return ins
}

// spChange returns how an instruction moves SP down (positive) or up.
func spChange(asm string) (int64, bool) {
	switch {
	case asm == "PUSHQ BP":
		return 8, true
	case asm == "POPQ BP":
		return -8, true
	}
	for op, sign := range map[string]int64{"SUBQ $": 1, "ADDQ $": -1} {
		if rest, ok := strings.CutPrefix(asm, op); ok && strings.HasSuffix(rest, ", SP") {
			n, err := strconv.ParseInt(strings.TrimSuffix(rest, ", SP"), 0, 64)
			return sign * n, err == nil
		}
	}
	return 0, false
}

// testSPDelta walks spfunc's straight-line code up to its first RET,
// tracking SP from the disassembly, and checks SPDelta at each instruction:
// 0 at entry, 8 after PUSHQ BP (Go 1.21+), frame size + 8 in the body.
func testSPDelta(t *testing.T, tc toolchain, bin string) {
	if bin == "" {
		return
	}
	t.Run("spdelta", func(t *testing.T) {
		tab, _ := openFile(t, bin)
		ins := disassemble(t, tc, bin, "main.spfunc")
		var cur, deepest int64
		pushed := false
		for _, in := range ins {
			got, ok := tab.SPDelta(in.addr)
			if !ok || got != cur {
				t.Fatalf("SPDelta(%#x) before %q = %d, %v; want %d", in.addr, in.asm, got, ok, cur)
			}
			if in.asm == "RET" {
				break
			}
			if d, ok := spChange(in.asm); ok {
				pushed = pushed || in.asm == "PUSHQ BP"
				cur += d
				deepest = max(deepest, cur)
			}
		}
		if cur != 0 {
			t.Errorf("SP delta at RET is %d, want 0", cur)
		}
		// The disassembly must have shown a real frame, else the walk
		// above proved little.
		if deepest < 48 {
			t.Errorf("deepest SP delta %d; want a frame of at least 48 bytes", deepest)
		}
		t.Logf("%s: frame of %d bytes, PUSHQ BP: %v", tc.name, deepest, pushed)
	})
}
