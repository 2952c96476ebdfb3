package diff

import (
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/store"
)

// fleet is one side of a diff as the store's MergeByTable gives it: the
// side's distinct stacks once, over function ids, and per instance the
// values of the stacks it ran. Tests need each instance's share of a few
// hundred functions and call paths out of tens of thousands, so the side
// is kept as rows and walked once the tests are chosen, not summed per
// function and instance up front.
type fleet struct {
	stacks    [][]int32 // distinct stacks, leaf first, as function ids
	instances []fleetInstance
}

type fleetInstance struct {
	labels labels.Labels
	total  int64
	stack  []int32 // indexes into fleet.stacks; a stack may repeat (groups of one pod)
	value  []int64 // parallel to stack, all > 0
}

// names interns function names for both sides of a diff.
type names struct {
	list  []string
	index map[string]int32
}

func newNames() *names { return &names{index: map[string]int32{}} }

func (n *names) intern(name string) int32 {
	id, ok := n.index[name]
	if !ok {
		id = int32(len(n.list))
		n.list = append(n.list, name)
		n.index[name] = id
	}
	return id
}

// newFleet groups a table's groups into instances. With auto, groups of
// the same pod are one instance (a pod's processes restart with new pids,
// but it is one replica); groups without a pod stay per pid and node.
func newFleet(t *store.StackTable, auto bool, nm *names) (fleet, error) {
	if err := checkTable(t); err != nil {
		return fleet{}, err
	}
	fid := make([]int32, len(t.Frames))
	for i, f := range t.Frames {
		fid[i] = nm.intern(query.FrameName(f))
	}
	out := fleet{stacks: make([][]int32, len(t.Stacks))}
	for i, st := range t.Stacks {
		ids := make([]int32, len(st))
		for j, f := range st {
			ids[j] = fid[f]
		}
		out.stacks[i] = ids
	}
	byKey := map[string]int{}
	for _, g := range t.Groups {
		key := g.Labels
		if pod := key.Get("pod"); auto && pod != "" {
			key = labels.FromStrings("pod", pod)
		}
		k, ok := byKey[key.String()]
		if !ok {
			k = len(out.instances)
			byKey[key.String()] = k
			out.instances = append(out.instances, fleetInstance{labels: key})
		}
		addRows(&out.instances[k], t, g)
	}
	// An instance with nothing to take shares of is no replicate.
	out.instances = slices.DeleteFunc(out.instances, func(in fleetInstance) bool { return in.total <= 0 })
	slices.SortFunc(out.instances, func(a, b fleetInstance) int { return labels.Compare(a.labels, b.labels) })
	return out, nil
}

// addRows adds a group's rows to its instance, leaving out those with no
// cost to share. An instance's first group, usually its only one, is
// taken as it is when every row counts: a side is a million rows.
func addRows(in *fleetInstance, t *store.StackTable, g store.TableGroup) {
	valid := func(j int) bool { return g.Value[j] > 0 && len(t.Stacks[g.Stack[j]]) > 0 }
	all := true
	for j := range g.Stack {
		if valid(j) {
			in.total += g.Value[j]
		} else {
			all = false
		}
	}
	if all && in.stack == nil {
		// Capped, so that a second group of the instance appends to a copy.
		in.stack, in.value = g.Stack[:len(g.Stack):len(g.Stack)], g.Value[:len(g.Value):len(g.Value)]
		return
	}
	for j, s := range g.Stack {
		if valid(j) {
			in.stack, in.value = append(in.stack, s), append(in.value, g.Value[j])
		}
	}
}

// checkTable refuses a table whose indexes point outside it.
func checkTable(t *store.StackTable) error {
	for i, st := range t.Stacks {
		for _, f := range st {
			if f < 0 || int(f) >= len(t.Frames) {
				return fmt.Errorf("stack %d: frame %d of %d", i, f, len(t.Frames))
			}
		}
	}
	for _, g := range t.Groups {
		if len(g.Stack) != len(g.Value) {
			return fmt.Errorf("group %s: %d stacks and %d values", g.Labels, len(g.Stack), len(g.Value))
		}
		for _, s := range g.Stack {
			if s < 0 || int(s) >= len(t.Stacks) {
				return fmt.Errorf("group %s: stack %d of %d", g.Labels, s, len(t.Stacks))
			}
		}
	}
	return nil
}

// tableOf is MergeByTable's answer from MergeBy's groups: for stores and
// tests that have groups of stack sets.
func tableOf(groups []store.Group) (*store.StackTable, error) {
	t := &store.StackTable{}
	frameAt := map[model.Frame]int32{}
	for _, g := range groups {
		if g.Stacks == nil {
			continue
		}
		if err := g.Stacks.Validate(); err != nil {
			return nil, fmt.Errorf("stacks of %s: %w", g.Labels, err)
		}
		tg := store.TableGroup{Labels: g.Labels}
		for i, st := range g.Stacks.Stacks {
			path := make([]int32, len(st))
			for j, f := range st {
				fr := g.Stacks.Frames[f]
				k, ok := frameAt[fr]
				if !ok {
					k = int32(len(t.Frames))
					t.Frames = append(t.Frames, fr)
					frameAt[fr] = k
				}
				path[j] = k
			}
			tg.Stack = append(tg.Stack, int32(len(t.Stacks)))
			tg.Value = append(tg.Value, g.Stacks.Values[i])
			t.Stacks = append(t.Stacks, path)
		}
		t.Groups = append(t.Groups, tg)
	}
	return t, nil
}
