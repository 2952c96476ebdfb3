// Command selfreport is built by the gopclntab tests with several toolchains
// and flags. It prints, as ground truth, what its own runtime reports for
// stacks that go through inlined calls:
//
//	anchor <function> <run-time entry>
//	stack
//	pc <return address>...
//	frame <function>\t<file>\t<line>...
package main

import (
	"fmt"
	"os"
	"runtime"
)

//go:noinline
func outer(pcs []uintptr) int {
	return mid(pcs) + 1
}

func mid(pcs []uintptr) int {
	return leaf(pcs) * 2
}

func leaf(pcs []uintptr) int {
	return capture(pcs)
}

//go:noinline
func capture(pcs []uintptr) int {
	return runtime.Callers(2, pcs)
}

//go:noinline
func twoSites(a, b []uintptr) int {
	x := leaf(a)
	y := leaf(b)
	return x + y
}

//go:noinline
func viaCallers(pcs []uintptr) int {
	return inlinedCallers(pcs)
}

// inlinedCallers inlines runtime.Callers, so its first PC is virtual.
func inlinedCallers(pcs []uintptr) int {
	return runtime.Callers(1, pcs)
}

var sink [64]byte

// spfunc has a fixed frame with locals; the SPDelta test disassembles it.
//
//go:noinline
func spfunc(n int) int {
	var buf [48]byte
	for i := range buf {
		buf[i] = byte(n + i)
	}
	copy(sink[:], buf[:])
	return report(buf[:])
}

//go:noinline
func report(b []byte) int { return len(b) }

func main() {
	f := runtime.FuncForPC(funcPC())
	fmt.Printf("anchor %s %#x\n", f.Name(), f.Entry())
	a, b := make([]uintptr, 64), make([]uintptr, 64)
	stacks := [][]uintptr{a, b, make([]uintptr, 64), make([]uintptr, 64)}
	outer(stacks[0])
	twoSites(stacks[1], stacks[2])
	viaCallers(stacks[3])
	for _, pcs := range stacks {
		printStack(pcs)
	}
	if spfunc(len(os.Args)) == 0 {
		os.Exit(1)
	}
}

//go:noinline
func funcPC() uintptr {
	pcs := make([]uintptr, 1)
	runtime.Callers(1, pcs)
	return pcs[0]
}

func printStack(pcs []uintptr) {
	n := 0
	for n < len(pcs) && pcs[n] != 0 {
		n++
	}
	fmt.Println("stack")
	for _, pc := range pcs[:n] {
		fmt.Printf("pc %#x\n", pc)
	}
	frames := runtime.CallersFrames(pcs[:n])
	for {
		fr, more := frames.Next()
		fmt.Printf("frame %s\t%s\t%d\n", fr.Function, fr.File, fr.Line)
		if !more {
			break
		}
	}
}
