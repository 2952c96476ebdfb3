package model

import "testing"

// TestFrameFP: any change to any field changes the fingerprint, including
// changes that a careless packing of fields would confuse.
func TestFrameFP(t *testing.T) {
	base := Frame{Function: "main.work", File: "main.go", Line: 12, Mapping: "/bin/app", BuildID: "b1", Address: 0x40}
	tests := []struct {
		name   string
		change func(*Frame)
	}{
		{"function", func(f *Frame) { f.Function = "main.rest" }},
		{"file", func(f *Frame) { f.File = "rest.go" }},
		{"line", func(f *Frame) { f.Line = 13 }},
		{"inlined", func(f *Frame) { f.Inlined = true }},
		{"mapping", func(f *Frame) { f.Mapping = "/bin/other" }},
		{"build ID", func(f *Frame) { f.BuildID = "b2" }},
		{"address", func(f *Frame) { f.Address = 0x41 }},
		{"address top bit", func(f *Frame) { f.Address |= 1 << 63 }},
		{"function and file swapped", func(f *Frame) { f.Function, f.File = f.File, f.Function }},
		{"mapping and build ID swapped", func(f *Frame) { f.Mapping, f.BuildID = f.BuildID, f.Mapping }},
		{"string moved between fields", func(f *Frame) { f.Function, f.File = "main.workmain.go", "" }},
		{"zero frame", func(f *Frame) { *f = Frame{} }},
	}
	want := FrameFP(base)
	if got := FrameFPOf(StringFP(base.Function), StringFP(base.File), StringFP(base.Mapping), StringFP(base.BuildID), base.Line, base.Inlined, base.Address); got != want {
		t.Fatalf("FrameFPOf = %x, FrameFP = %x", got, want)
	}
	seen := map[uint64]string{want: "base"}
	for _, tt := range tests {
		f := base
		tt.change(&f)
		fp := FrameFP(f)
		if other, dup := seen[fp]; dup {
			t.Errorf("%s: same fingerprint as %s", tt.name, other)
		}
		seen[fp] = tt.name
	}
}
