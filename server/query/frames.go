package query

import (
	"path"
	"strconv"

	"github.com/flightrec/flightrec/server/model"
)

// FrameName is how flamegraphs and top tables show a frame: its function,
// or for an unsymbolized frame its object and address ("libc.so.6+0x9a3f0",
// "0x9a3f0" without a known object), which stays meaningful across hosts
// because addresses are object-relative.
func FrameName(f model.Frame) string {
	if f.Function != "" {
		return f.Function
	}
	addr := "0x" + strconv.FormatUint(f.Address, 16)
	if f.Mapping == "" {
		return addr
	}
	return path.Base(f.Mapping) + "+" + addr
}

// nameTable interns display names.
type nameTable struct {
	names []string
	index map[string]int32
}

func newNameTable() *nameTable { return &nameTable{index: map[string]int32{}} }

func (t *nameTable) intern(name string) int32 {
	id, ok := t.index[name]
	if !ok {
		id = int32(len(t.names))
		t.names = append(t.names, name)
		t.index[name] = id
	}
	return id
}

// frames returns the name id of each of set's frames.
func (t *nameTable) frames(set *model.StackSet) []int32 {
	ids := make([]int32, len(set.Frames))
	for i, f := range set.Frames {
		ids[i] = t.intern(FrameName(f))
	}
	return ids
}
