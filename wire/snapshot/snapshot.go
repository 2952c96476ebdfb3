// Package snapshot is the flight recorder's snapshot format (docs/snapshot.md):
// the window an agent freezes when a trigger fires, as shipped to the server.
package snapshot

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// Version is the format version this package writes and reads.
const Version = 1

// Snapshot is one frozen window of one node.
type Snapshot struct {
	Version   int               `json:"version"`
	ID        string            `json:"id"`
	Node      string            `json:"node"`
	Labels    map[string]string `json:"labels,omitempty"` // node-level labels (e.g. cluster)
	Trigger   Trigger           `json:"trigger"`
	StartNS   int64             `json:"start_ns"` // window, Unix nanoseconds
	EndNS     int64             `json:"end_ns"`
	Processes []Process         `json:"processes"`
	Frames    []Frame           `json:"frames"`
	Stacks    [][]int32         `json:"stacks"` // indexes into Frames, leaf first
	Samples   Samples           `json:"samples"`
	OffCPU    OffCPU            `json:"off_cpu"`
	Events    []Event           `json:"events"`
	Stats     Stats             `json:"stats"`
}

// Trigger says why the snapshot was taken.
type Trigger struct {
	Kind        string            `json:"kind"` // manual, alert, signal, oom, cpu
	Reason      string            `json:"reason"`
	TimeNS      int64             `json:"time_ns"`
	Selector    string            `json:"selector,omitempty"`    // what it targeted
	Labels      map[string]string `json:"labels,omitempty"`      // the alert's labels
	Fingerprint string            `json:"fingerprint,omitempty"` // the alert's
	PID         uint32            `json:"pid,omitempty"`         // local triggers: the process
	ID          string            `json:"id,omitempty"`          // the server's trigger id
}

// Process is a process seen in the window, with its series labels.
type Process struct {
	PID    uint32            `json:"pid"`
	Labels map[string]string `json:"labels"`
}

// Frame is one function call; unsymbolized frames keep mapping, build ID
// and object-relative address.
type Frame struct {
	Function string `json:"function,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int64  `json:"line,omitempty"`
	Inlined  bool   `json:"inlined,omitempty"`
	Mapping  string `json:"mapping,omitempty"`
	BuildID  string `json:"build_id,omitempty"`
	Address  uint64 `json:"address,omitempty"`
}

// Samples are on-CPU samples, one per index across the columns.
type Samples struct {
	PeriodNS int64    `json:"period_ns"` // CPU time one sample stands for
	TimeNS   []int64  `json:"time_ns"`   // Unix nanoseconds
	PID      []uint32 `json:"pid"`
	TID      []uint32 `json:"tid"`
	CPU      []uint16 `json:"cpu"`
	Stack    []int32  `json:"stack"`
}

// OffCPU are off-CPU intervals, one per index across the columns.
type OffCPU struct {
	StartNS    []int64  `json:"start_ns"`
	DurationNS []int64  `json:"duration_ns"`
	PID        []uint32 `json:"pid"`
	TID        []uint32 `json:"tid"`
	Stack      []int32  `json:"stack"` // -1 when the blocking stack is unknown
	State      []string `json:"state"` // sleep, blocked (I/O), preempted, other
}

// Event is a process event.
type Event struct {
	TimeNS     int64  `json:"time_ns"`
	Kind       string `json:"kind"` // exec, exit, signal, oom_kill
	PID        uint32 `json:"pid"`
	TID        uint32 `json:"tid,omitempty"`
	Comm       string `json:"comm,omitempty"`
	ExitCode   *int   `json:"exit_code,omitempty"`   // exit: normal exit
	Signal     int    `json:"signal,omitempty"`      // signal, or exit by signal
	CoreDumped bool   `json:"core_dumped,omitempty"` // exit by signal
	SiCode     int    `json:"si_code,omitempty"`
	Addr       uint64 `json:"addr,omitempty"`
	Filename   string `json:"filename,omitempty"`
	Stack      int32  `json:"stack"` // the crashing thread's stack, -1 if none
}

// Stats tell how complete the window is.
type Stats struct {
	RingEvicted     uint64 `json:"ring_evicted"`   // records evicted from the ring overall
	RingStartNS     int64  `json:"ring_start_ns"`  // oldest record the ring still held
	LostSamples     uint64 `json:"lost_samples"`   // dropped in the kernel (ring full) overall
	UnknownStacks   uint64 `json:"unknown_stacks"` // off-CPU intervals whose stack was not known
	TruncatedRecord bool   `json:"truncated,omitempty"`
}

// Limits bound what Decode accepts.
type Limits struct {
	MaxCompressed   int64 // bytes on the wire
	MaxDecompressed int64 // bytes of JSON
}

// DefaultLimits suit a minute of a busy node.
var DefaultLimits = Limits{MaxCompressed: 64 << 20, MaxDecompressed: 512 << 20}

// Encode writes s as gzipped JSON.
func Encode(w io.Writer, s *Snapshot) error {
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(s); err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	return zw.Close()
}

// Errors of Decode; the message says more.
var (
	ErrTooLarge  = errors.New("snapshot too large")
	ErrMalformed = errors.New("malformed snapshot")
)

// Decode reads gzipped (or plain) JSON within lim and validates it.
func Decode(body []byte, lim Limits) (*Snapshot, error) {
	if int64(len(body)) > lim.MaxCompressed {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(body), lim.MaxCompressed)
	}
	var r io.Reader = bytes.NewReader(body)
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrMalformed, err)
		}
		r = zr
	}
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("%w: truncated or corrupt gzip: %v", ErrMalformed, err)
	}
	if int64(len(data)) > lim.MaxDecompressed {
		return nil, fmt.Errorf("%w: decompressed body exceeds %d bytes", ErrTooLarge, lim.MaxDecompressed)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Snapshot
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return &s, nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// Validate checks every reference and column length.
func (s *Snapshot) Validate() error {
	switch {
	case s.Version != Version:
		return fmt.Errorf("version %d, this server reads %d", s.Version, Version)
	case !idPattern.MatchString(s.ID):
		return fmt.Errorf("id %q: want 1-128 of [A-Za-z0-9._-]", s.ID)
	case s.Node == "":
		return errors.New("no node")
	case s.EndNS <= s.StartNS:
		return errors.New("window ends before it starts")
	case s.Trigger.Kind == "":
		return errors.New("trigger has no kind")
	}
	for i, st := range s.Stacks {
		for _, f := range st {
			if f < 0 || int(f) >= len(s.Frames) {
				return fmt.Errorf("stack %d refers to frame %d of %d", i, f, len(s.Frames))
			}
		}
	}
	if err := s.Samples.validate(len(s.Stacks)); err != nil {
		return err
	}
	if err := s.OffCPU.validate(len(s.Stacks)); err != nil {
		return err
	}
	for i, e := range s.Events {
		if e.Stack < -1 || int(e.Stack) >= len(s.Stacks) {
			return fmt.Errorf("event %d refers to stack %d of %d", i, e.Stack, len(s.Stacks))
		}
		if e.Kind == "" {
			return fmt.Errorf("event %d has no kind", i)
		}
	}
	return nil
}

func (c *Samples) validate(stacks int) error {
	n := len(c.TimeNS)
	if len(c.PID) != n || len(c.TID) != n || len(c.CPU) != n || len(c.Stack) != n {
		return fmt.Errorf("sample columns differ in length: %d times, %d pids, %d tids, %d cpus, %d stacks",
			n, len(c.PID), len(c.TID), len(c.CPU), len(c.Stack))
	}
	if n > 0 && c.PeriodNS <= 0 {
		return errors.New("samples without a period")
	}
	for i, st := range c.Stack {
		if st < 0 || int(st) >= stacks {
			return fmt.Errorf("sample %d refers to stack %d of %d", i, st, stacks)
		}
	}
	return nil
}

func (c *OffCPU) validate(stacks int) error {
	n := len(c.StartNS)
	if len(c.DurationNS) != n || len(c.PID) != n || len(c.TID) != n || len(c.Stack) != n || len(c.State) != n {
		return errors.New("off-CPU columns differ in length")
	}
	for i := range c.StartNS {
		if c.DurationNS[i] < 0 {
			return fmt.Errorf("off-CPU interval %d has a negative duration", i)
		}
		if st := c.Stack[i]; st < -1 || int(st) >= stacks {
			return fmt.Errorf("off-CPU interval %d refers to stack %d of %d", i, st, stacks)
		}
	}
	return nil
}
