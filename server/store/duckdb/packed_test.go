package duckdb

import (
	"errors"
	"slices"
	"testing"
)

func TestPackedRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		ids    []uint32
		values []int64
	}{
		{"empty", nil, nil},
		{"one", []uint32{7}, []int64{3}},
		{"zero id and value", []uint32{0, 1}, []int64{0, 5}},
		{"wide gaps", []uint32{1, 300, 70000, 1<<32 - 1}, []int64{1, 128, 1 << 40, 1 << 62}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := appendPacked([]byte("prefix"), tt.ids, tt.values)
			var ids []uint32
			var vals []int64
			if err := unpack(b[len("prefix"):], func(id uint32, v int64) { ids, vals = append(ids, id), append(vals, v) }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, tt.ids) || !slices.Equal(vals, tt.values) {
				t.Errorf("got %v %v, want %v %v", ids, vals, tt.ids, tt.values)
			}
		})
	}
}

func TestUnpackRejectsCorrupt(t *testing.T) {
	good := appendPacked(nil, []uint32{3, 9}, []int64{1, 2})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(slices.Clone(good), 0)},
		{"count beyond data", []byte{0x7f, 1, 1}},
		{"repeated id", appendPacked(nil, []uint32{3, 3}, []int64{1, 1})},
		{"id past 32 bits", []byte{2, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := unpack(tt.b, func(uint32, int64) {}); !errors.Is(err, errPacked) {
				t.Errorf("unpack(%x) = %v, want errPacked", tt.b, err)
			}
		})
	}
}

func TestAccumulatorSumsAndResets(t *testing.T) {
	var a accumulator
	for _, row := range [][2][]int64{{{1, 5}, {3, 10}}, {{1, 5, 900}, {1, 1, 1}}} {
		ids := make([]uint32, len(row[0]))
		for i, id := range row[0] {
			ids[i] = uint32(id)
		}
		if err := unpack(appendPacked(nil, ids, row[1]), a.add); err != nil {
			t.Fatal(err)
		}
	}
	var ids []uint32
	var vals []int64
	if err := unpack(a.packAndReset(nil), func(id uint32, v int64) { ids, vals = append(ids, id), append(vals, v) }); err != nil {
		t.Fatal(err)
	}
	if want := []uint32{1, 5, 900}; !slices.Equal(ids, want) || !slices.Equal(vals, []int64{4, 11, 1}) {
		t.Errorf("sums %v %v, want ids %v values [4 11 1]", ids, vals, want)
	}
	if !a.empty() || slices.ContainsFunc(a.sum, func(v int64) bool { return v != 0 }) {
		t.Errorf("accumulator not empty after packAndReset: %v", a.ids)
	}
}

// FuzzUnpack: any bytes either unpack to strictly increasing ids that pack
// back to the same bytes, or fail with errPacked; never a panic.
func FuzzUnpack(f *testing.F) {
	f.Add(appendPacked(nil, []uint32{1, 2, 70000}, []int64{1, 300, 5}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ids []uint32
		var vals []int64
		err := unpack(b, func(id uint32, v int64) { ids, vals = append(ids, id), append(vals, v) })
		if err != nil {
			if !errors.Is(err, errPacked) {
				t.Fatalf("error %v is not errPacked", err)
			}
			return
		}
		if again := appendPacked(nil, ids, vals); !slices.Equal(again, b) && len(ids) > 0 {
			// Non-minimal varints decode too; the values must still round-trip.
			var ids2 []uint32
			if err := unpack(again, func(id uint32, _ int64) { ids2 = append(ids2, id) }); err != nil || !slices.Equal(ids, ids2) {
				t.Fatalf("repacked %x does not unpack to %v: %v", again, ids, err)
			}
		}
	})
}
