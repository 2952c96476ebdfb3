package gopclntab

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"testing"
)

// The functions below form stacks with known inlining: inlOuter* are
// physical frames; inlMid, inlLeaf, inlGeneric, inlPair and inlDeep* are
// small enough that the compiler inlines them (TestFramesInProcess fails
// if it stops doing so, since the depth check below would not hold).

//go:noinline
func inlOuterDepth2(pcs []uintptr) int {
	return inlMid(pcs) + 1
}

func inlMid(pcs []uintptr) int {
	return inlLeaf(pcs) * 2
}

func inlLeaf(pcs []uintptr) int {
	return runtime.Callers(1, pcs)
}

// inlOuterTwoSites inlines the same function at two call sites, so the
// enclosing frame's line must come from each site's parentPc.
//
//go:noinline
func inlOuterTwoSites(pcs, pcs2 []uintptr) int {
	a := inlPair(pcs)
	b := inlPair(pcs2)
	return a + b
}

func inlPair(pcs []uintptr) int {
	return runtime.Callers(1, pcs)
}

//go:noinline
func inlOuterGeneric(pcs []uintptr) int {
	return inlGeneric(pcs, 7)
}

func inlGeneric[T any](pcs []uintptr, v T) int {
	_ = v
	return runtime.Callers(1, pcs)
}

//go:noinline
func inlOuterDepth3(pcs []uintptr) int {
	return inlDeep1(pcs) + 3
}

func inlDeep1(pcs []uintptr) int { return inlDeep2(pcs) ^ 1 }

func inlDeep2(pcs []uintptr) int { return inlDeep3(pcs) - 1 }

func inlDeep3(pcs []uintptr) int { return capturePCs(pcs) }

// capturePCs is a physical call, so the first PC captured is a real return
// address in the middle of an inlined chain rather than a virtual one.
//
//go:noinline
func capturePCs(pcs []uintptr) int { return runtime.Callers(2, pcs) }

func frameStrings(fs []Frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line)
	}
	return out
}

// runtimeFrames is the ground truth: what runtime.CallersFrames reports.
func runtimeFrames(pcs []uintptr) []Frame {
	var out []Frame
	it := runtime.CallersFrames(pcs)
	for {
		f, more := it.Next()
		out = append(out, Frame{Function: f.Function, File: f.File, Line: f.Line})
		if !more {
			return out
		}
	}
}

// tableFrames symbolizes the return addresses of runtime.Callers with tab.
// Callers also returns a "virtual" return address per inlined frame; those
// must resolve to the matching suffix of the physical PC's frames.
func tableFrames(t *testing.T, tab *Table, pcs []uintptr, bias uint64) []Frame {
	t.Helper()
	var out []Frame
	for i := 0; i < len(pcs); {
		pc := callPC(tab, uint64(pcs[i])-bias)
		fs := tab.Frames(pc, nil)
		if len(fs) == 0 {
			t.Fatalf("no frames for pc %#x (elf %#x)", pcs[i], pc)
		}
		for j := 1; j < len(fs) && i+j < len(pcs); j++ {
			virt := tab.Frames(callPC(tab, uint64(pcs[i+j])-bias), nil)
			if !reflect.DeepEqual(virt, fs[j:]) {
				t.Errorf("virtual pc %#x: got %q, want suffix %q", pcs[i+j], frameStrings(virt), frameStrings(fs[j:]))
			}
		}
		out = append(out, fs...)
		i += len(fs)
	}
	return out
}

// callPC turns a return address into a PC inside the call instruction, as
// runtime.CallersFrames does (but never before the function's entry).
func callPC(tab *Table, ret uint64) uint64 {
	if entry, _, ok := tab.FuncEntry(ret); ok && ret > entry {
		return ret - 1
	}
	return ret
}

// funcByName finds a function's entry by its symbol name, by linear scan.
func funcByName(tab *Table, name string) (uint64, bool) {
	for i := 0; i < tab.NumFuncs(); i++ {
		f, ok := tab.funcAt(i)
		if ok && string(cstring(tab.hdr.funcnametab, uint64(f.nameOff))) == name {
			return f.entry, true
		}
	}
	return 0, false
}

func openSelf(t testing.TB) *Table {
	t.Helper()
	data, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Skipf("read /proc/self/exe: %v", err)
	}
	tab, err := Open(data)
	if err != nil {
		t.Fatalf("Open(/proc/self/exe): %v", err)
	}
	return tab
}

// selfBias is the difference between run-time and ELF addresses of this
// test binary (non-zero if it was built as PIE).
func selfBias(t *testing.T, tab *Table) uint64 {
	t.Helper()
	const name = "github.com/flightrec/flightrec/agent/symbolize/gopclntab.inlOuterDepth2"
	entry, ok := funcByName(tab, name)
	if !ok {
		t.Fatalf("%s not in the table", name)
	}
	return uint64(reflect.ValueOf(inlOuterDepth2).Pointer()) - entry
}

func TestFramesInProcess(t *testing.T) {
	tab := openSelf(t)
	bias := selfBias(t, tab)
	// Each capture fills a PC buffer from inside an inlined chain.
	tests := []struct {
		name     string
		capture  func(pcs []uintptr)
		minDepth int // frames that Frames must return for the first PC
	}{
		// runtime.Callers is itself inlined here, so the first PC is a
		// virtual one (a call site recorded in the inline tree).
		{"depth2/virtual", func(pcs []uintptr) { inlOuterDepth2(pcs) }, 3},
		{"depth3/physical", func(pcs []uintptr) { inlOuterDepth3(pcs) }, 4},
		{"generic", func(pcs []uintptr) { inlOuterGeneric(pcs) }, 2},
		{"two-sites/first", func(pcs []uintptr) { inlOuterTwoSites(pcs, make([]uintptr, 64)) }, 2},
		{"two-sites/second", func(pcs []uintptr) { inlOuterTwoSites(make([]uintptr, 64), pcs) }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcs := make([]uintptr, 64)
			tt.capture(pcs)
			pcs = trimZero(pcs)
			want := runtimeFrames(pcs)
			got := tableFrames(t, tab, pcs, bias)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("frames differ\ngot:  %q\nwant: %q", frameStrings(got), frameStrings(want))
			}
			first := tab.Frames(uint64(pcs[0])-bias-1, nil)
			if len(first) < tt.minDepth {
				t.Fatalf("first pc has %d frames %q, want >= %d (did the compiler stop inlining?)", len(first), frameStrings(first), tt.minDepth)
			}
			t.Logf("%d frames, first pc: %q", len(got), frameStrings(first))
		})
	}
}

func trimZero(pcs []uintptr) []uintptr {
	for i, pc := range pcs {
		if pc == 0 {
			return pcs[:i]
		}
	}
	return pcs
}

// runtimeFramesAt asks the runtime for all logical frames at the ELF pc.
// CallersFrames only expands inlined frames when more PCs follow, so a
// sentinel PC (which can never be an implied virtual PC) is appended and
// its frame dropped.
func runtimeFramesAt(pc uintptr, sentinel uintptr) []Frame {
	fs := runtimeFrames([]uintptr{pc + 1, sentinel})
	return fs[:len(fs)-1]
}

// TestFramesAllFuncsInProcess compares Frames with the runtime at sampled PCs
// of every function in the test binary, which includes the inlined code of
// the runtime and standard library.
func TestFramesAllFuncsInProcess(t *testing.T) {
	tab := openSelf(t)
	bias := selfBias(t, tab)
	sentinel := reflect.ValueOf(inlOuterDepth2).Pointer() + 1
	var checked, inlined, mismatches int
	for i := 0; i < tab.NumFuncs(); i++ {
		f, ok := tab.funcAt(i)
		if !ok {
			t.Fatalf("function %d does not decode", i)
		}
		// pc+1 goes to the runtime, so it must stay inside the function.
		for _, pc := range samplePCs(f.entry, f.end-1, 16) {
			rf := runtime.FuncForPC(uintptr(pc + bias))
			if rf == nil {
				continue // not a function for the runtime either (e.g. padding symbols)
			}
			got := tab.Frames(pc, nil)
			want := runtimeFramesAt(uintptr(pc+bias), sentinel)
			checked++
			if len(got) > 1 {
				inlined++
			}
			if f.nameOff == 0 && len(want) == 1 && want[0].Function == "" {
				// The runtime cannot name the function whose name is
				// at offset 0 of funcnametab; we can.
				want[0].Function = got[0].Function
			}
			if !reflect.DeepEqual(got, want) {
				mismatches++
				if mismatches <= 10 {
					t.Errorf("pc %#x:\ngot:  %q\nwant: %q", pc, frameStrings(got), frameStrings(want))
				}
			}
		}
	}
	t.Logf("checked %d PCs in %d functions, %d with inlined frames, %d mismatches", checked, tab.NumFuncs(), inlined, mismatches)
	if inlined < 100 {
		t.Errorf("only %d sampled PCs had inlined frames; the inline tree is probably not being read", inlined)
	}
}

// samplePCs returns up to n PCs spread over [entry, end), always including
// entry and end-1.
func samplePCs(entry, end uint64, n int) []uint64 {
	size := end - entry
	if size <= uint64(n) {
		out := make([]uint64, 0, size)
		for pc := entry; pc < end; pc++ {
			out = append(out, pc)
		}
		return out
	}
	out := make([]uint64, 0, n)
	for k := 0; k < n; k++ {
		out = append(out, entry+size*uint64(k)/uint64(n-1)-uint64(k/(n-1)))
	}
	return out
}
