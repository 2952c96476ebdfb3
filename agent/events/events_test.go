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
		if b.Decode(raw) == nil {
			s := b.Samples[0]
			if len(s.User)+len(s.Kernel) > (len(raw)-sampleFramesOff)/8 {
				t.Fatalf("decoded more frames than the record holds")
			}
		}
	})
}
