package events

import (
	"encoding/binary"
	"fmt"
)

// More record kinds; they mirror enum record_kind in bpf/include/flightrec.h.
const (
	KindStack   Kind = 2
	KindOffCPU  Kind = 3
	KindExec    Kind = 4
	KindExit    Kind = 5
	KindSignal  Kind = 6
	KindOOMKill Kind = 7
)

// Layout of struct stack_record, struct offcpu_record and struct
// event_record; a test checks them against the generated Go mirrors.
const (
	stackHashOff    = 24
	stackUserSPOff  = 32
	stackSPWordsOff = 40
	stackUserLenOff = 56
	stackKernLenOff = 58
	stackFramesOff  = 64

	offcpuStartOff = 24
	offcpuHashOff  = 32
	offcpuStateOff = 40
	offcpuSize     = 48

	eventCommOff     = 24
	eventExitCodeOff = 40
	eventSignalOff   = 44
	eventSiCodeOff   = 48
	eventTargetOff   = 52
	eventAddrOff     = 56
	eventHashOff     = 64
	eventFileOff     = 72
	eventFileLen     = 64
	eventSize        = 136
)

// Stack is a blocking or crashing stack, sent once per change per thread
// and referred to by Hash from OffCPU intervals and signal events.
type Stack struct {
	Time     uint64
	PID, TID uint32
	Hash     uint64
	UserSP   uint64
	SPWords  [2]uint64
	User     []uint64 // alias the batch, like Sample's
	Kernel   []uint64
}

// OffCPUState tells why a thread left the CPU.
type OffCPUState uint8

// Off-CPU states (enum offcpu_state).
const (
	Preempted OffCPUState = iota // still runnable
	Sleeping                     // interruptible sleep: waiting for an event
	Blocked                      // uninterruptible: usually I/O
	OtherState
)

func (s OffCPUState) String() string {
	switch s {
	case Preempted:
		return "preempted"
	case Sleeping:
		return "sleep"
	case Blocked:
		return "blocked"
	}
	return "other"
}

// OffCPU is an interval a thread spent off the CPU.
type OffCPU struct {
	Start, End uint64 // CLOCK_BOOTTIME ns
	PID, TID   uint32
	CPU        uint16 // where it came back
	StackHash  uint64 // the Stack it left with
	State      OffCPUState
}

// ProcEvent is a process event: exec, exit, fatal signal, OOM kill.
type ProcEvent struct {
	Kind      Kind
	Time      uint64
	PID, TID  uint32 // the task the event is about (signal: the target)
	CPU       uint16
	Comm      string
	ExitCode  int32 // KindExit: the wait(2) status
	Signal    int32 // KindSignal
	SiCode    int32 // KindSignal
	Addr      uint64
	StackHash uint64 // KindSignal raised by the thread itself: its stack
	Filename  string // KindExec
}

// ExitStatus splits a wait(2) status: the exit code, or the signal that
// killed the process and whether it dumped core.
func (e ProcEvent) ExitStatus() (code, signal int, core bool) {
	st := int(e.ExitCode)
	if st&0x7f == 0 {
		return st >> 8 & 0xff, 0, false
	}
	return 0, st & 0x7f, st&0x80 != 0
}

func (b *Batch) decodeStack(raw []byte) error {
	if len(raw) < stackFramesOff {
		return fmt.Errorf("stack record of %d bytes is truncated", len(raw))
	}
	le := binary.LittleEndian
	nu, nk := int(le.Uint16(raw[stackUserLenOff:])), int(le.Uint16(raw[stackKernLenOff:]))
	if want := stackFramesOff + 8*(nu+nk); len(raw) < want {
		return fmt.Errorf("stack record with %d+%d frames needs %d bytes, has %d", nu, nk, want, len(raw))
	}
	s := Stack{
		Time: le.Uint64(raw), PID: le.Uint32(raw[8:]), TID: le.Uint32(raw[12:]),
		Hash:    le.Uint64(raw[stackHashOff:]),
		UserSP:  le.Uint64(raw[stackUserSPOff:]),
		SPWords: [2]uint64{le.Uint64(raw[stackSPWordsOff:]), le.Uint64(raw[stackSPWordsOff+8:])},
	}
	frames := b.frames.alloc(nu + nk)
	for i := range frames {
		frames[i] = le.Uint64(raw[stackFramesOff+8*i:])
	}
	s.User, s.Kernel = frames[:nu:nu], frames[nu:]
	b.Stacks = append(b.Stacks, s)
	return nil
}

func (b *Batch) decodeOffCPU(raw []byte) error {
	if len(raw) < offcpuSize {
		return fmt.Errorf("off-CPU record of %d bytes is truncated", len(raw))
	}
	le := binary.LittleEndian
	o := OffCPU{
		End: le.Uint64(raw), PID: le.Uint32(raw[8:]), TID: le.Uint32(raw[12:]), CPU: le.Uint16(raw[18:]),
		Start:     le.Uint64(raw[offcpuStartOff:]),
		StackHash: le.Uint64(raw[offcpuHashOff:]),
		State:     OffCPUState(min(le.Uint32(raw[offcpuStateOff:]), uint32(OtherState))),
	}
	if o.Start > o.End {
		return fmt.Errorf("off-CPU interval ends before it starts")
	}
	b.OffCPU = append(b.OffCPU, o)
	return nil
}

func (b *Batch) decodeEvent(kind Kind, raw []byte) error {
	if len(raw) < eventSize {
		return fmt.Errorf("event record of %d bytes is truncated", len(raw))
	}
	le := binary.LittleEndian
	b.Events = append(b.Events, ProcEvent{
		Kind: kind, Time: le.Uint64(raw), PID: le.Uint32(raw[8:]), TID: le.Uint32(raw[12:]), CPU: le.Uint16(raw[18:]),
		Comm:      cString(raw[eventCommOff : eventCommOff+commLen]),
		ExitCode:  int32(le.Uint32(raw[eventExitCodeOff:])),
		Signal:    int32(le.Uint32(raw[eventSignalOff:])),
		SiCode:    int32(le.Uint32(raw[eventSiCodeOff:])),
		Addr:      le.Uint64(raw[eventAddrOff:]),
		StackHash: le.Uint64(raw[eventHashOff:]),
		Filename:  cString(raw[eventFileOff : eventFileOff+eventFileLen]),
	})
	return nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
