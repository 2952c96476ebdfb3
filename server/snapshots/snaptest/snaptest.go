// Package snaptest builds a small snapshot whose every number is known,
// for the tests of the snapshot store, its API and the command-line client.
package snaptest

import (
	"bytes"
	"testing"
	"time"

	"github.com/flightrec/flightrec/wire/snapshot"
)

// Times of the snapshot, as offsets from its start.
const (
	Window  = 2 * time.Second // the snapshot spans [start, start+2s)
	Trigger = time.Second     // the trigger fired 1s in
	Period  = 10_000_000      // ns of CPU one sample stands for
)

// Snapshot is node n1's window [start, start+2s), triggered at start+1s by
// an alert on service api:
//
//	stacks: 0 main.parse ← main.handle ← main.main
//	        1 runtime.mallocgc ← main.handle ← main.main
//	        2 syscall.read ← main.handle ← main.main
//	        3 libc.so.6+0x9a3f0 (unsymbolized) ← main.main
//	on-CPU, 10 ms a sample:
//	  pid 100 tid 101: stack 0 at +50, +150, +250 ms; stack 1 at +350 ms;
//	                   stack 1 at +1050, +1150, +1250 ms; stack 0 at +1350 ms
//	  pid 100 tid 102: stack 1 at +1050 ms
//	  pid 200 tid 201: stack 3 at +50 ms
//	off-CPU:
//	  pid 100 tid 101: blocked in stack 2 from +400 ms for 250 ms
//	  pid 100 tid 102: sleep, stack unknown, from +1900 ms for 300 ms (100 in the window)
//	  pid 200 tid 201: preempted in stack 3 from +0 ms for 50 ms
//	events: exec of pid 200 at +10 ms; SIGSEGV of pid 100 tid 101 in stack 0
//	        at +1500 ms; its exit by signal 11 at +1600 ms
//
// So before the trigger: 50 ms on CPU, main.parse 60% self, mallocgc 20%,
// libc 20%; after: 50 ms, mallocgc 80%, main.parse 20%.
func Snapshot(id string, start time.Time) *snapshot.Snapshot {
	at := func(ms int64) int64 { return start.UnixNano() + ms*1e6 }
	return &snapshot.Snapshot{
		Version: snapshot.Version, ID: id, Node: "n1", Labels: map[string]string{"cluster": "c1"},
		Trigger: snapshot.Trigger{Kind: "alert", Reason: "APIErrorBudgetBurn", TimeNS: at(1000), Selector: `{service="api"}`,
			Labels: map[string]string{"alertname": "APIErrorBudgetBurn", "service": "api"}, Fingerprint: "f1", ID: "t-1-1"},
		StartNS: at(0), EndNS: at(2000),
		Processes: []snapshot.Process{
			{PID: 100, Labels: map[string]string{"service": "api", "node": "n1", "pod": "api-1"}},
			{PID: 200, Labels: map[string]string{"service": "db", "node": "n1"}},
		},
		Frames: []snapshot.Frame{
			{Function: "main.main", File: "/src/main.go", Line: 10, Mapping: "/app/api", BuildID: "b1"},
			{Function: "main.handle", File: "/src/handle.go", Line: 20, Mapping: "/app/api", BuildID: "b1"},
			{Function: "main.parse", File: "/src/parse.go", Line: 30, Mapping: "/app/api", BuildID: "b1"},
			{Function: "runtime.mallocgc", File: "/go/src/runtime/malloc.go", Line: 1000, Mapping: "/app/api", BuildID: "b1"},
			{Function: "syscall.read", File: "/go/src/syscall/syscall.go", Line: 5, Mapping: "/app/api", BuildID: "b1"},
			{Mapping: "/usr/lib/libc.so.6", BuildID: "c1", Address: 0x9a3f0},
		},
		Stacks: [][]int32{{2, 1, 0}, {3, 1, 0}, {4, 1, 0}, {5, 0}},
		Samples: snapshot.Samples{
			PeriodNS: Period,
			TimeNS:   []int64{at(50), at(150), at(250), at(350), at(1050), at(1150), at(1250), at(1350), at(1050), at(50)},
			PID:      []uint32{100, 100, 100, 100, 100, 100, 100, 100, 100, 200},
			TID:      []uint32{101, 101, 101, 101, 101, 101, 101, 101, 102, 201},
			CPU:      []uint16{0, 0, 0, 0, 0, 0, 0, 0, 1, 1},
			Stack:    []int32{0, 0, 0, 1, 1, 1, 1, 0, 1, 3},
		},
		OffCPU: snapshot.OffCPU{
			StartNS:    []int64{at(400), at(1900), at(0)},
			DurationNS: []int64{250e6, 300e6, 50e6},
			PID:        []uint32{100, 100, 200},
			TID:        []uint32{101, 102, 201},
			Stack:      []int32{2, -1, 3},
			State:      []string{"blocked", "sleep", "preempted"},
		},
		Events: []snapshot.Event{
			{TimeNS: at(10), Kind: "exec", PID: 200, TID: 200, Comm: "db", Filename: "/usr/bin/db", Stack: -1},
			{TimeNS: at(1500), Kind: "signal", PID: 100, TID: 101, Comm: "api", Signal: 11, SiCode: 1, Addr: 0x10, Stack: 0},
			{TimeNS: at(1600), Kind: "exit", PID: 100, TID: 100, Comm: "api", Signal: 11, CoreDumped: true, Stack: -1},
		},
		Stats: snapshot.Stats{RingStartNS: at(-5000), UnknownStacks: 1},
	}
}

// Encode returns s as an agent uploads it, gzipped JSON.
func Encode(t testing.TB, s *snapshot.Snapshot) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := snapshot.Encode(&buf, s); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
