package procevents

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/agent/sampler"
	"github.com/flightrec/flightrec/internal/testenv"
)

// TestExecAndExit: a shell that sleeps, then execs /bin/sh again to exit
// with code 3, yields an exec event naming the file and an exit event with
// status 3<<8; the exec removes the pid from known_pids, where the test put it.
func TestExecAndExit(t *testing.T) {
	testenv.RequireBPF(t)
	s, err := sampler.Open(sampler.Config{Frequency: 19, PID: uint32(os.Getpid())})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tr, err := Open(Config{}, s.Shared())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	d, err := events.NewDrainer(s.Events(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	cmd := exec.Command("/bin/sh", "-c", "sleep 0.3; exec /bin/sh -c 'exit 3'")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.Process.Pid)
	if err := s.Know(pid); err != nil {
		t.Fatal(err)
	}
	var known bool
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var execs []events.ProcEvent
	var exit *events.ProcEvent
	go func() { _ = cmd.Wait() }()
	err = d.Run(ctx, func(b *events.Batch) {
		for _, e := range b.Events {
			if e.PID != pid {
				continue
			}
			switch e.Kind {
			case events.KindExec:
				execs = append(execs, e)
				var v uint8
				known = !errors.Is(s.Shared().KnownPIDs.Lookup(pid, &v), ebpf.ErrKeyNotExist)
			case events.KindExit:
				exit = &e
				cancel()
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(execs) == 0 || execs[len(execs)-1].Filename != "/bin/sh" {
		t.Errorf("exec events %+v, want the last to be of /bin/sh", execs)
	}
	if known {
		t.Errorf("pid %d still in known_pids after its exec", pid)
	}
	if exit == nil {
		t.Fatalf("no exit event for pid %d", pid)
	}
	if code, sig, _ := exit.ExitStatus(); code != 3 || sig != 0 {
		t.Errorf("exit event %+v: code %d signal %d, want code 3", *exit, code, sig)
	}
	c, err := s.ReadCounters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Events < 2 || c.EventsLost != 0 {
		t.Errorf("counters %+v: want ≥ 2 events, none lost", c)
	}
}
