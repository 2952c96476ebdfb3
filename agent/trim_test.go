package agent

import (
	"slices"
	"testing"

	"github.com/flightrec/flightrec/agent/sampler"
	"github.com/flightrec/flightrec/agent/symbolize"
)

func TestTrimTracingFrames(t *testing.T) {
	names := map[uint64]string{
		0xa000: "bpf_prog_29b2b5c5196de277_on_switch", // a stale kallsyms may not know it
		0xb000: "bpf_trace_run4",
		0xc000: "__schedule",
		0xd000: "schedule",
	}
	asked := 0
	f := newTracingFrames([]sampler.CodeRange{{Start: 0x9000, End: 0x9100}}, func(addr uint64, call bool) symbolize.Location {
		asked++
		return symbolize.Location{Frames: []symbolize.Frame{{Function: names[addr]}}}
	})
	for _, tt := range []struct{ in, want []uint64 }{
		{[]uint64{0x9010, 0xb000, 0xc000, 0xd000}, []uint64{0xc000, 0xd000}}, // our code by range, dispatch by name
		{[]uint64{0xa000, 0xb000, 0xc000}, []uint64{0xc000}},                 // a program by name
		{[]uint64{0xc000, 0xb000}, []uint64{0xc000, 0xb000}},                 // only leading frames go
		{nil, nil},
	} {
		if got := f.trim(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("trim(%x) = %x, want %x", tt.in, got, tt.want)
		}
	}
	before := asked
	f.trim([]uint64{0x9010, 0xb000, 0xc000})
	if asked != before {
		t.Errorf("addresses resolved again: the decision must be cached")
	}
}
