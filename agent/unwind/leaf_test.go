package unwind

import (
	"reflect"
	"testing"
)

// Hand-assembled x86-64 code.
var (
	// push %rbp; mov %rsp,%rbp; mov %edi,%eax; pop %rbp; ret
	framed = []byte{0x55, 0x48, 0x89, 0xe5, 0x89, 0xf8, 0x5d, 0xc3}
	// endbr64; push %rbp; mov %rsp,%rbp (8b form); leave; rep ret
	cetFramed = []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x8b, 0xec, 0xc9, 0xf3, 0xc3}
	// lea 0x1(%rdi),%eax; ret: a frameless leaf
	frameless = []byte{0x8d, 0x47, 0x01, 0xc3}
	// push %rbp; push %rbx; sub $8,%rsp; ...; ret $8
	noMov = []byte{0x55, 0x53, 0x48, 0x83, 0xec, 0x08, 0xc2, 0x08, 0x00}
	// endbr64; bnd ret
	cetLeaf = []byte{0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xc3}
)

func TestReturnSlotX86(t *testing.T) {
	tests := []struct {
		name string
		code []byte
		off  uint64
		slot uint64
		ok   bool
	}{
		{"entry", framed, 0, 0, true},
		{"entry, no bytes", nil, 0, 0, true},
		{"after push", framed, 1, 8, true},
		{"after mov: frame set up", framed, 4, 0, false},
		{"at pop: frame still linked", framed, 6, 0, false},
		{"after pop, at ret", framed, 7, 0, true},
		{"past the code", framed, 8, 0, false},
		{"far past the code", framed, 1 << 63, 0, false},
		{"endbr64 entry", cetFramed, 0, 0, true},
		{"after endbr64", cetFramed, 4, 0, true},
		{"after endbr64 and push", cetFramed, 5, 8, true},
		{"after 8b-form mov", cetFramed, 8, 0, false},
		{"at leave", cetFramed, 8, 0, false},
		{"at rep ret", cetFramed, 9, 0, true},
		{"inside endbr64 (not an instruction boundary)", cetFramed, 2, 0, false},
		{"frameless entry", frameless, 0, 0, true},
		{"frameless body", frameless, 1, 0, false},
		{"frameless ret", frameless, 3, 0, true},
		{"push without mov", noMov, 1, 8, true},
		{"after second push", noMov, 2, 0, false},
		{"ret imm16", noMov, 6, 0, true},
		{"endbr64 then bnd ret", cetLeaf, 4, 0, true},
		{"truncated code at off", framed[:5], 5, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slot, ok := ReturnSlotX86(tt.code, tt.off)
			if slot != tt.slot || ok != tt.ok {
				t.Errorf("ReturnSlotX86(% x, %d) = %d, %v; want %d, %v", tt.code, tt.off, slot, ok, tt.slot, tt.ok)
			}
		})
	}
}

func TestFixLeaf(t *testing.T) {
	const pc, ret1, ret2, caller = 0x1010, 0x2020, 0x3030, 0x4040
	tests := []struct {
		name    string
		stack   []uint64
		spWords [2]uint64
		slot    uint64
		want    []uint64
	}{
		{"slot 0 inserts", []uint64{pc, ret1, ret2}, [2]uint64{caller, 0x7ffd0000}, 0, []uint64{pc, caller, ret1, ret2}},
		{"slot 8 inserts", []uint64{pc, ret1, ret2}, [2]uint64{0x7ffd0000, caller}, 8, []uint64{pc, caller, ret1, ret2}},
		{"already in the chain", []uint64{pc, caller, ret2}, [2]uint64{caller, 0}, 0, []uint64{pc, caller, ret2}},
		{"zero candidate", []uint64{pc, ret1}, [2]uint64{0, caller}, 0, []uint64{pc, ret1}},
		{"unknown slot", []uint64{pc, ret1}, [2]uint64{caller, caller}, 16, []uint64{pc, ret1}},
		{"odd slot", []uint64{pc, ret1}, [2]uint64{caller, caller}, 4, []uint64{pc, ret1}},
		{"pc only", []uint64{pc}, [2]uint64{caller, 0}, 0, []uint64{pc, caller}},
		{"empty", nil, [2]uint64{caller, caller}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FixLeaf(append([]uint64(nil), tt.stack...), tt.spWords, tt.slot)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FixLeaf(%x, %x, %d) = %x, want %x", tt.stack, tt.spWords, tt.slot, got, tt.want)
			}
		})
	}
}

// TestFixLeafReusesCapacity documents the aliasing: with spare capacity the
// result shares the input's backing array.
func TestFixLeafReusesCapacity(t *testing.T) {
	buf := make([]uint64, 3, 8)
	copy(buf, []uint64{1, 2, 3})
	got := FixLeaf(buf, [2]uint64{9, 0}, 0)
	if &got[0] != &buf[0] || !reflect.DeepEqual(got, []uint64{1, 9, 2, 3}) {
		t.Errorf("got %v (shared %v)", got, &got[0] == &buf[0])
	}
}

// FuzzReturnSlotX86 checks that no code and offset make it panic, and that
// it only ever answers 0 or 8.
func FuzzReturnSlotX86(f *testing.F) {
	for _, code := range [][]byte{framed, cetFramed, frameless, noMov, cetLeaf} {
		f.Add(code, uint64(1))
	}
	f.Fuzz(func(t *testing.T, code []byte, off uint64) {
		if slot, ok := ReturnSlotX86(code, off); ok && slot != 0 && slot != 8 {
			t.Fatalf("slot %d", slot)
		}
		stack := FixLeaf([]uint64{1, 2}, [2]uint64{off, 3}, off%16)
		if len(stack) < 2 || len(stack) > 3 {
			t.Fatalf("FixLeaf grew the stack to %d", len(stack))
		}
	})
}
