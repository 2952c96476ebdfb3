package unwind

import "bytes"

var endbr64 = [...]byte{0xf3, 0x0f, 0x1e, 0xfa}

// ReturnSlotX86 reports, for x86-64 code with no unwind tables, where the
// return address sits relative to SP at pc, when the frame-pointer chain does
// not yet (or no longer) include the current function's frame. code holds
// the function's bytes from its start; off is pc - start. ok is false when
// the frame is set up or the position can't be told from the bytes.
//
// Only positions whose stack layout is certain are recognized: the entry
// (also after endbr64), right after push %rbp (whatever follows it), and any
// ret, where the epilogue has popped everything.
func ReturnSlotX86(code []byte, off uint64) (slot uint64, ok bool) {
	if off == 0 {
		return 0, true
	}
	if off >= uint64(len(code)) {
		return 0, false
	}
	start := uint64(0)
	if bytes.HasPrefix(code, endbr64[:]) {
		start = uint64(len(endbr64))
	}
	switch {
	case off == start:
		return 0, true
	case off == start+1 && code[start] == 0x55: // push %rbp
		return 8, true
	case isRet(code[off:]):
		return 0, true
	}
	return 0, false
}

// isRet reports whether b starts with a near return: ret, ret imm16, or
// the rep/bnd-prefixed ret that some compilers emit.
func isRet(b []byte) bool {
	switch {
	case len(b) >= 1 && (b[0] == 0xc3 || b[0] == 0xc2):
		return true
	case len(b) >= 2 && (b[0] == 0xf3 || b[0] == 0xf2) && b[1] == 0xc3:
		return true
	}
	return false
}

// FixLeaf returns the user stack with the missing caller inserted. stack[0]
// is the sampled pc and stack[1:] the return addresses the frame-pointer
// walk found; spWords holds the words at SP and SP+8; slot comes from
// ReturnSlotX86 or, for Go code, from the pclntab's SP delta. For slot 0 or
// 8 the candidate spWords[slot/8] is inserted at index 1 unless it is zero
// or already stack[1] (the chain did include the caller after all).
//
// Like append, FixLeaf may use stack's spare capacity: the result can share
// stack's backing array, so the caller must use only the result afterwards.
func FixLeaf(stack []uint64, spWords [2]uint64, slot uint64) []uint64 {
	if len(stack) == 0 || (slot != 0 && slot != 8) {
		return stack
	}
	c := spWords[slot/8]
	if c == 0 || (len(stack) > 1 && stack[1] == c) {
		return stack
	}
	stack = append(stack, 0)
	copy(stack[2:], stack[1:])
	stack[1] = c
	return stack
}
