package snapshots

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// Profile types a snapshot yields.
const (
	TypeCPU    = "cpu"
	TypeOffCPU = "off_cpu"
)

// modelType describes a snapshot profile type the way the store's are.
func modelType(typ string) model.Type {
	if typ == TypeOffCPU {
		return model.Type{Name: TypeOffCPU, SampleType: TypeOffCPU, SampleUnit: "nanoseconds"}
	}
	return model.Type{Name: TypeCPU, SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
}

// unknownStack names the off-CPU time whose stack the agent did not know.
const unknownStack = "[unknown stack]"

// Selection narrows a snapshot to a profile type, a sub-window and a
// process or thread.
type Selection struct {
	Type     string // TypeCPU or TypeOffCPU
	From, To int64  // Unix ns, [From, To)
	PID, TID uint32 // 0: any
}

func (sel Selection) thread(pid, tid uint32) bool {
	return (sel.PID == 0 || pid == sel.PID) && (sel.TID == 0 || tid == sel.TID)
}

// ParseWindowTime parses a time within a snapshot: Unix nanoseconds
// (1795633000000000000), a signed offset from the trigger time (-5s, +2s,
// +1m30s) or RFC 3339.
func ParseWindowTime(s string, trigger time.Time) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, fmt.Errorf("empty time: want Unix nanoseconds, an offset from the trigger (-5s, +2s) or RFC 3339")
	case s[0] == '-' || s[0] == '+':
		d, err := query.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("bad offset %q: %w", s, err)
		}
		if s[0] == '-' {
			d = -d
		}
		return trigger.Add(d), nil
	case strings.Trim(s, "0123456789") == "":
		ns, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad time %q: out of range", s)
		}
		return time.Unix(0, ns), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: want Unix nanoseconds, an offset from the trigger (-5s, +2s) or RFC 3339", s)
	}
	return t, nil
}

// StackSet sums the selected on-CPU samples (their period each) or
// off-CPU time (the part of each interval within the sub-window) per stack.
func StackSet(snap *snapshot.Snapshot, sel Selection) *model.StackSet {
	values := make([]int64, len(snap.Stacks)+1) // the last: unknown stack
	if sel.Type == TypeOffCPU {
		o := &snap.OffCPU
		for i, start := range o.StartNS {
			if !sel.thread(o.PID[i], o.TID[i]) {
				continue
			}
			st := int(o.Stack[i])
			if st < 0 {
				st = len(snap.Stacks)
			}
			values[st] += overlap(start, start+o.DurationNS[i], sel.From, sel.To)
		}
	} else {
		sm := &snap.Samples
		for i, t := range sm.TimeNS {
			if t >= sel.From && t < sel.To && sel.thread(sm.PID[i], sm.TID[i]) {
				values[sm.Stack[i]] += sm.PeriodNS
			}
		}
	}
	set := &model.StackSet{Frames: frames(snap)}
	for st, v := range values {
		if v == 0 {
			continue
		}
		if st == len(snap.Stacks) {
			set.Stacks = append(set.Stacks, []int32{int32(len(set.Frames) - 1)})
		} else {
			set.Stacks = append(set.Stacks, snap.Stacks[st])
		}
		set.Values = append(set.Values, v)
	}
	return set
}

// frames converts the snapshot's frames, plus one for unknown stacks last.
func frames(snap *snapshot.Snapshot) []model.Frame {
	out := make([]model.Frame, len(snap.Frames), len(snap.Frames)+1)
	for i, f := range snap.Frames {
		out[i] = model.Frame{Function: f.Function, File: f.File, Line: f.Line, Inlined: f.Inlined,
			Mapping: f.Mapping, BuildID: f.BuildID, Address: f.Address}
	}
	return append(out, model.Frame{Function: unknownStack})
}

// overlap is the length of [a, b) ∩ [from, to).
func overlap(a, b, from, to int64) int64 {
	return max(0, min(b, to)-max(a, from))
}

// stackNames are a stack's frames as flamegraphs name them, leaf first.
func stackNames(snap *snapshot.Snapshot, stack int32) []string {
	if stack < 0 || int(stack) >= len(snap.Stacks) {
		return nil
	}
	st := snap.Stacks[stack]
	out := make([]string, len(st))
	for i, f := range st {
		fr := snap.Frames[f]
		out[i] = query.FrameName(model.Frame{Function: fr.Function, Mapping: fr.Mapping, Address: fr.Address})
	}
	return out
}
