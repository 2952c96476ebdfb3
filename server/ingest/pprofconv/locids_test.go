package pprofconv

import (
	"bytes"
	"math"
	"testing"

	"github.com/google/pprof/profile"
)

// TestLocationIDs checks location ids on either side of what fits in the
// int32s the decoder keeps them in (tables.sampleLocs): decoded as pprof
// decodes them, converted as the reference converts them.
func TestLocationIDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		ids  []uint64 // of the locations of a stack, leaf first
	}{
		{"dense", []uint64{1, 2, 3}},
		{"max int32", []uint64{math.MaxInt32, 1, math.MaxInt32 - 1}},
		{"over int32", []uint64{math.MaxInt32 + 1, 1, math.MaxUint32}},
		{"over uint32", []uint64{1 << 40, math.MaxUint64, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := locIDsProfile(t, tc.ids)
			want, err := pprofParse(data)
			if err != nil {
				t.Fatal(err)
			}
			var tb tables
			if err := decodeWire(data, &tb); err != nil {
				t.Fatal(err)
			}
			if err := tb.resolve(); err != nil {
				t.Fatal(err)
			}
			if got, want := dumpTables(&tb), dumpProfile(want); got != want {
				t.Fatalf("decoded differently:\n got %s\nwant %s", got, want)
			}
			for bits := range uint8(8) {
				compareConvert(t, data, diffOptions(bits))
			}
		})
	}
}

// locIDsProfile returns a profile whose locations have ids, one function
// each, and two samples: all of them, and the first alone.
func locIDsProfile(t *testing.T, ids []uint64) []byte {
	t.Helper()
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
	var locs []*profile.Location
	for i, id := range ids {
		fn := &profile.Function{ID: uint64(i + 1), Name: string(rune('a' + i))}
		p.Function = append(p.Function, fn)
		l := &profile.Location{ID: id, Line: []profile.Line{{Function: fn, Line: int64(i)}}}
		p.Location = append(p.Location, l)
		locs = append(locs, l)
	}
	p.Sample = []*profile.Sample{{Location: locs, Value: []int64{3}}, {Location: locs[:1], Value: []int64{5}}}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
