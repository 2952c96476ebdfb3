package pprofconv

import (
	"encoding/binary"
	"math"
	"testing"
)

// refUvarint is uvarint as pprof's decoder reads one: up to ten bytes,
// bits past the 64th dropped.
func refUvarint(b []byte, i int) (uint64, int) {
	var x uint64
	for n := 0; n < maxVarintLen && i+n < len(b); n++ {
		x |= uint64(b[i+n]&0x7f) << (7 * n)
		if b[i+n] < 0x80 {
			return x, i + n + 1
		}
	}
	return 0, -1
}

// TestUvarint compares uvarint's paths (one byte, two, unrolled, near the
// end of the buffer) with the plain loop, for varints of every length,
// overlong ones and truncated ones, at every offset into a buffer.
func TestUvarint(t *testing.T) {
	var cases [][]byte
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, 1 << 21, 0x401800, 1<<35 + 3, 1 << 56, math.MaxInt64, math.MaxUint64} {
		cases = append(cases, binary.AppendUvarint(nil, v))
	}
	cases = append(cases,
		[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f},       // ten bytes, high bits dropped
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // eleven: bad
		[]byte{0x81, 0x80, 0x00}, // overlong
		[]byte{0x80, 0x80},       // truncated
	)
	for _, c := range cases {
		for pad := range 12 {
			for lead := range 2 {
				b := append(make([]byte, lead), c...)
				b = append(b, make([]byte, pad)...)
				for _, b := range [][]byte{b, b[:len(b)-pad]} {
					gotV, gotI := uvarint(b, lead)
					wantV, wantI := refUvarint(b, lead)
					if gotV != wantV || gotI != wantI {
						t.Errorf("uvarint(%x, %d) = %d, %d; want %d, %d", b, lead, gotV, gotI, wantV, wantI)
					}
				}
			}
		}
	}
}

// TestTwoVarints checks the label and line fast path against varintFields.
func TestTwoVarints(t *testing.T) {
	for _, b := range [][]byte{
		{0x08, 0x01, 0x10, 0x02},
		{0x08, 0x81, 0x01, 0x10, 0xff, 0x7f},
		{0x08, 0x01, 0x10, 0x02, 0x18, 0x03}, // a third field
		{0x10, 0x02, 0x08, 0x01},             // out of order
		{0x08, 0x01, 0x10},                   // truncated
		{0x08, 0x01, 0x10, 0x80},             // truncated varint
		{0x08, 0x01, 0x08, 0x02, 0x10, 0x03}, // repeated
		{0x08, 0x01, 0x12, 0x00},             // wrong wire type
		{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x10, 0x00},
	} {
		f1, f2, ok := twoVarints(b)
		var f [5]uint64
		err := varintFields(b, f[:])
		if ok && (err != nil || f != [5]uint64{0, f1, f2, 0, 0}) {
			t.Errorf("twoVarints(%x) = %d, %d; varintFields: %v, %v", b, f1, f2, f, err)
		}
	}
	if _, _, ok := twoVarints([]byte{0x08, 0x81, 0x01, 0x10, 0xff, 0x7f}); !ok {
		t.Errorf("twoVarints rejects key and str of two bytes")
	}
}
