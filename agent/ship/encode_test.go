package ship

import (
	"bytes"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/zstd"
)

func testProfile(samples int) *profile.Profile {
	fn := &profile.Function{ID: 1, Name: "main.work"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn, Line: 7}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}},
		Function:   []*profile.Function{fn},
		Location:   []*profile.Location{loc},
	}
	for i := range samples {
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{int64(i + 1)}})
	}
	return p
}

// TestEncoderReuse checks that a reused Encoder writes each profile exactly
// as a fresh one does, whatever it encoded before, and that the body is
// zstd that decodes to the profile.
func TestEncoderReuse(t *testing.T) {
	var enc Encoder
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, tt := range []struct {
		name    string
		samples int
	}{
		{"first", 3},
		{"bigger", 500},
		{"smaller after bigger", 1},
		{"empty", 0},
	} {
		p := testProfile(tt.samples)
		got, err := enc.Encode(p)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		want, err := new(Encoder).Encode(p)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: a reused encoder wrote %d bytes, a fresh one %d", tt.name, len(got), len(want))
		}
		raw, err := dec.DecodeAll(got, nil)
		if err != nil {
			t.Fatalf("%s: not zstd: %v", tt.name, err)
		}
		back, err := profile.ParseData(raw)
		if err != nil {
			t.Fatalf("%s: parse: %v", tt.name, err)
		}
		if len(back.Sample) != tt.samples {
			t.Errorf("%s: %d samples back, want %d", tt.name, len(back.Sample), tt.samples)
		}
	}
}
