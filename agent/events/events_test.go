package events

import (
	"encoding/binary"
	"slices"
	"testing"
	"unsafe"

	"github.com/flightrec/flightrec/bpf"
)

// TestLayoutMatchesBPF pins the decoder's offsets to the struct bpf2go
// generated from the compiled object, so the C and Go sides cannot drift.
func TestLayoutMatchesBPF(t *testing.T) {
	var s bpf.SamplerCpuSample
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"header", unsafe.Sizeof(s.Hdr), headerSize},
		{"comm", unsafe.Offsetof(s.Comm), sampleCommOff},
		{"user_sp", unsafe.Offsetof(s.UserSp), sampleUserSPOff},
		{"sp_words", unsafe.Offsetof(s.SpWords), sampleSPWordsOff},
		{"user_len", unsafe.Offsetof(s.UserLen), sampleUserLenOff},
		{"kern_len", unsafe.Offsetof(s.KernLen), sampleKernLenOff},
		{"frames", unsafe.Offsetof(s.Frames), sampleFramesOff},
		{"kind", unsafe.Offsetof(s.Hdr.Kind), 16},
		{"cpu", unsafe.Offsetof(s.Hdr.Cpu), 18},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: BPF layout has %d, decoder uses %d", c.name, c.got, c.want)
		}
	}
}

func sampleRecord(pid, tid uint32, comm string, user, kern []uint64) []byte {
	b := make([]byte, sampleFramesOff+8*(len(user)+len(kern)))
	le := binary.LittleEndian
	le.PutUint64(b[0:], 12345)
	le.PutUint32(b[8:], pid)
	le.PutUint32(b[12:], tid)
	le.PutUint16(b[16:], uint16(KindCPUSample))
	le.PutUint16(b[18:], 1)
	copy(b[sampleCommOff:], comm)
	le.PutUint64(b[sampleUserSPOff:], 0x7ffe0000)
	le.PutUint64(b[sampleSPWordsOff:], 0xaaaa)
	le.PutUint64(b[sampleSPWordsOff+8:], 0xbbbb)
	le.PutUint16(b[sampleUserLenOff:], uint16(len(user)))
	le.PutUint16(b[sampleKernLenOff:], uint16(len(kern)))
	for i, f := range append(slices.Clone(user), kern...) {
		le.PutUint64(b[sampleFramesOff+8*i:], f)
	}
	return b
}

func TestDecodeSample(t *testing.T) {
	var b Batch
	rec := sampleRecord(42, 43, "worker", []uint64{1, 2, 3}, []uint64{0xffff1, 0xffff2})
	if err := b.Decode(rec); err != nil {
		t.Fatal(err)
	}
	s := b.Samples[0]
	if s.PID != 42 || s.TID != 43 || s.CPU != 1 || s.Time != 12345 || s.CommString() != "worker" {
		t.Errorf("header decoded as %+v", s)
	}
	if !slices.Equal(s.User, []uint64{1, 2, 3}) || !slices.Equal(s.Kernel, []uint64{0xffff1, 0xffff2}) {
		t.Errorf("frames decoded as user %v kernel %v", s.User, s.Kernel)
	}
	if s.SPWords != [2]uint64{0xaaaa, 0xbbbb} || s.UserSP != 0x7ffe0000 {
		t.Errorf("sp decoded as %#x %#x", s.UserSP, s.SPWords)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	good := sampleRecord(1, 1, "x", []uint64{1, 2}, []uint64{3})
	unknown := slices.Clone(good)
	binary.LittleEndian.PutUint16(unknown[16:], 99)
	tests := map[string][]byte{
		"empty":            nil,
		"short header":     good[:10],
		"truncated body":   good[:sampleFramesOff-1],
		"truncated frames": good[:len(good)-8],
		"unknown kind":     unknown,
	}
	for name, raw := range tests {
		var b Batch
		if err := b.Decode(raw); err == nil {
			t.Errorf("%s: Decode accepted a malformed record", name)
		}
		if len(b.Samples) != 0 {
			t.Errorf("%s: malformed record left %d samples", name, len(b.Samples))
		}
	}
}

// TestArenaKeepsEarlierSlices fills more than one arena chunk and checks that
// earlier samples still see their own frames.
func TestArenaKeepsEarlierSlices(t *testing.T) {
	var b Batch
	deep := make([]uint64, 191)
	for round := 0; round < 2; round++ {
		b.Reset()
		for i := 0; i < 300; i++ {
			for j := range deep {
				deep[j] = uint64(i)
			}
			if err := b.Decode(sampleRecord(uint32(i), 0, "x", deep[:127], deep[127:])); err != nil {
				t.Fatal(err)
			}
		}
		for i, s := range b.Samples {
			if s.User[0] != uint64(i) || s.Kernel[63] != uint64(i) || len(s.User) != 127 || len(s.Kernel) != 64 {
				t.Fatalf("round %d sample %d: frames overwritten (user[0]=%d)", round, i, s.User[0])
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sampleRecord(1, 2, "a", []uint64{1}, []uint64{2}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var b Batch
		if b.Decode(raw) == nil && len(b.Samples) > 0 {
			s := b.Samples[0]
			if len(s.User)+len(s.Kernel) > (len(raw)-sampleFramesOff)/8 {
				t.Fatalf("decoded more frames than the record holds")
			}
		}
	})
}

func TestRecordLayoutsMatchBPF(t *testing.T) {
	var st bpf.OffcpuStackRecord
	var oc bpf.OffcpuOffcpuRecord
	var ev bpf.EventsEventRecord
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"stack hash", unsafe.Offsetof(st.Hash), stackHashOff},
		{"stack user_sp", unsafe.Offsetof(st.UserSp), stackUserSPOff},
		{"stack sp_words", unsafe.Offsetof(st.SpWords), stackSPWordsOff},
		{"stack user_len", unsafe.Offsetof(st.UserLen), stackUserLenOff},
		{"stack kern_len", unsafe.Offsetof(st.KernLen), stackKernLenOff},
		{"stack frames", unsafe.Offsetof(st.Frames), stackFramesOff},
		{"offcpu start", unsafe.Offsetof(oc.Start), offcpuStartOff},
		{"offcpu hash", unsafe.Offsetof(oc.StackHash), offcpuHashOff},
		{"offcpu state", unsafe.Offsetof(oc.State), offcpuStateOff},
		{"offcpu size", unsafe.Sizeof(oc), offcpuSize},
		{"event comm", unsafe.Offsetof(ev.Comm), eventCommOff},
		{"event exit_code", unsafe.Offsetof(ev.ExitCode), eventExitCodeOff},
		{"event signal", unsafe.Offsetof(ev.Signal), eventSignalOff},
		{"event si_code", unsafe.Offsetof(ev.SiCode), eventSiCodeOff},
		{"event target_pid", unsafe.Offsetof(ev.TargetPid), eventTargetOff},
		{"event addr", unsafe.Offsetof(ev.Addr), eventAddrOff},
		{"event stack_hash", unsafe.Offsetof(ev.StackHash), eventHashOff},
		{"event filename", unsafe.Offsetof(ev.Filename), eventFileOff},
		{"event size", unsafe.Sizeof(ev), eventSize},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: BPF layout has %d, decoder uses %d", c.name, c.got, c.want)
		}
	}
}

func TestDecodeOtherRecords(t *testing.T) {
	le := binary.LittleEndian
	hdr := func(size int, kind Kind, pid, tid uint32, ts uint64) []byte {
		b := make([]byte, size)
		le.PutUint64(b, ts)
		le.PutUint32(b[8:], pid)
		le.PutUint32(b[12:], tid)
		le.PutUint16(b[16:], uint16(kind))
		le.PutUint16(b[18:], 1)
		return b
	}
	st := hdr(stackFramesOff+3*8, KindStack, 5, 6, 100)
	le.PutUint64(st[stackHashOff:], 0xabc)
	le.PutUint16(st[stackUserLenOff:], 2)
	le.PutUint16(st[stackKernLenOff:], 1)
	for i, f := range []uint64{0x401000, 0x402000, 0xffffffff81000000} {
		le.PutUint64(st[stackFramesOff+8*i:], f)
	}
	oc := hdr(offcpuSize, KindOffCPU, 5, 6, 900)
	le.PutUint64(oc[offcpuStartOff:], 400)
	le.PutUint64(oc[offcpuHashOff:], 0xabc)
	le.PutUint32(oc[offcpuStateOff:], 2)
	ex := hdr(eventSize, KindExit, 7, 7, 1000)
	copy(ex[eventCommOff:], "crasher")
	le.PutUint32(ex[eventExitCodeOff:], 0x8b) // SIGSEGV with core
	sig := hdr(eventSize, KindSignal, 7, 8, 990)
	le.PutUint32(sig[eventSignalOff:], 11)
	le.PutUint64(sig[eventAddrOff:], 0xdead)
	le.PutUint64(sig[eventHashOff:], 0xabc)

	var b Batch
	for _, r := range [][]byte{st, oc, ex, sig} {
		if err := b.Decode(r); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.Stacks) != 1 || b.Stacks[0].Hash != 0xabc || !slices.Equal(b.Stacks[0].User, []uint64{0x401000, 0x402000}) || len(b.Stacks[0].Kernel) != 1 {
		t.Errorf("stack %+v", b.Stacks)
	}
	if o := b.OffCPU[0]; o.Start != 400 || o.End != 900 || o.State != Blocked || o.StackHash != 0xabc || o.State.String() != "blocked" {
		t.Errorf("off-CPU %+v", o)
	}
	exit := b.Events[0]
	if code, signal, core := exit.ExitStatus(); exit.Kind != KindExit || exit.Comm != "crasher" || code != 0 || signal != 11 || !core {
		t.Errorf("exit %+v: code %d signal %d core %v", exit, code, signal, core)
	}
	if s := b.Events[1]; s.Kind != KindSignal || s.Signal != 11 || s.Addr != 0xdead || s.StackHash != 0xabc || s.TID != 8 {
		t.Errorf("signal %+v", s)
	}
	if code, _, _ := (ProcEvent{ExitCode: 3 << 8}).ExitStatus(); code != 3 {
		t.Errorf("exit status 3<<8 gives code %d", code)
	}
	if b.Len() != 4 {
		t.Errorf("Len %d", b.Len())
	}
	bad := hdr(offcpuSize, KindOffCPU, 1, 1, 10)
	le.PutUint64(bad[offcpuStartOff:], 20)
	if err := (&Batch{}).Decode(bad); err == nil {
		t.Error("accepted an interval ending before it starts")
	}
	for _, r := range [][]byte{st[:stackFramesOff-1], st[:len(st)-1], oc[:offcpuSize-1], ex[:eventSize-1]} {
		if err := (&Batch{}).Decode(r); err == nil {
			t.Errorf("accepted a truncated %d-byte record", len(r))
		}
	}
}
