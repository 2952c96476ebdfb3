package gopclntab

import (
	"os"
	"reflect"
	"testing"
)

// BenchmarkOpen opens the test binary itself (several MB, thousands of
// functions); Open must not depend on the number of functions.
func BenchmarkOpen(b *testing.B) {
	data, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFrames resolves a PC with two inlined frames (three in all);
// allocations are the returned strings.
func BenchmarkFrames(b *testing.B) {
	tab := openSelf(b)
	const name = "github.com/flightrec/flightrec/agent/symbolize/gopclntab.inlOuterDepth3"
	entry, ok := funcByName(tab, name)
	if !ok {
		b.Fatalf("%s not found", name)
	}
	bias := uint64(reflect.ValueOf(inlOuterDepth3).Pointer()) - entry
	pcs := make([]uintptr, 8)
	inlOuterDepth3(pcs)
	pc := uint64(pcs[0]) - bias - 1
	frames := tab.Frames(pc, nil)
	if len(frames) != 4 {
		b.Fatalf("got %d frames, want 4", len(frames))
	}
	b.Run("inlined", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			frames = tab.Frames(pc, frames[:0])
		}
	})
	b.Run("SPDelta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tab.SPDelta(pc)
		}
	})
	start, end := tab.TextRange()
	b.Run("spread", func(b *testing.B) {
		b.ReportAllocs()
		pc := start
		for b.Loop() {
			frames = tab.Frames(pc, frames[:0])
			if pc += 4099; pc >= end {
				pc = start + pc%4099
			}
		}
	})
}
