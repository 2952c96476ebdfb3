package otlp

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	profilespb "go.opentelemetry.io/proto/otlp/profiles/v1development"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/flightrec/flightrec/server/model"
)

// Attribute keys (semantic conventions, as the OTel eBPF profiler sends them)
// that describe frames rather than series.
const (
	attrFrameType      = "profile.frame.type"
	attrBuildIDGNU     = "process.executable.build_id.gnu"
	attrBuildIDGo      = "process.executable.build_id.go"
	attrBuildIDHtlhash = "process.executable.build_id.htlhash"

	frameTypeKernel = "kernel"
	// kernelImage is the eBPF profiler's mapping name for the kernel proper
	// (kernel modules are named after the module).
	kernelImage   = "vmlinux"
	kernelMapping = "[kernel.kallsyms]"
)

// Table names, as error messages call them.
const (
	stringTable    = "string_table"
	attributeTable = "attribute_table"
	functionTable  = "function_table"
	mappingTable   = "mapping_table"
	locationTable  = "location_table"
	stackTable     = "stack_table"
	linkTable      = "link_table"
)

// dict is a request's ProfilesDictionary, validated once up front so that
// lookups afterwards cannot go out of range, with every location already
// turned into frames: samples share locations, so each is converted once.
type dict struct {
	strs   []string
	attrs  []*profilespb.KeyValueAndUnit
	links  int
	stacks []*profilespb.Stack

	frames    []model.Frame // every distinct frame of the request
	frameIDs  map[model.Frame]int32
	locFrames [][]int32 // location index → frame ids, leaf first

	stackDone []bool
	stackIDs  [][]int32 // stack index → frame ids, leaf first
	stackKeys []string  // stack index → stackKey(stackIDs)
}

// mapping is what frames need of a Mapping.
type mapping struct {
	file          string
	buildID       string
	start, offset uint64
}

func newDict(pd *profilespb.ProfilesDictionary) (*dict, error) {
	d := &dict{
		strs:     pd.GetStringTable(),
		attrs:    pd.GetAttributeTable(),
		links:    len(pd.GetLinkTable()),
		stacks:   pd.GetStackTable(),
		frameIDs: make(map[model.Frame]int32),
	}
	if err := d.checkAttributes(); err != nil {
		return nil, fmt.Errorf("dictionary: %w", err)
	}
	funcs := pd.GetFunctionTable()
	if err := d.checkFunctions(funcs); err != nil {
		return nil, fmt.Errorf("dictionary: %w", err)
	}
	maps, err := d.mappings(pd.GetMappingTable())
	if err != nil {
		return nil, fmt.Errorf("dictionary: %w", err)
	}
	if err := d.addLocations(pd.GetLocationTable(), funcs, maps); err != nil {
		return nil, fmt.Errorf("dictionary: %w", err)
	}
	if err := d.checkStacks(); err != nil {
		return nil, fmt.Errorf("dictionary: %w", err)
	}
	d.stackDone = make([]bool, len(d.stacks))
	d.stackIDs = make([][]int32, len(d.stacks))
	d.stackKeys = make([]string, len(d.stacks))
	return d, nil
}

// inRange reports whether i indexes a table of n entries. Index 0 of an
// absent table is allowed: it is the null entry every table starts with.
func inRange(i int32, n int) bool {
	return i == 0 || i > 0 && int64(i) < int64(n)
}

func rangeError(field string, i int32, table string, n int) error {
	return fmt.Errorf("%s: index %d out of range (%s has %d entries)", field, i, table, n)
}

// checkEach checks a list of indices into table.
func checkEach(field string, idx []int32, table string, n int) error {
	for j, i := range idx {
		if !inRange(i, n) {
			return rangeError(fmt.Sprintf("%s[%d]", field, j), i, table, n)
		}
	}
	return nil
}

// at returns s[i], or the zero value (nil for messages, whose getters accept
// nil) for the null entry of an absent table.
func at[T any](s []T, i int32) T {
	var zero T
	if i >= 0 && int64(i) < int64(len(s)) {
		return s[i]
	}
	return zero
}

func (d *dict) str(i int32) string {
	if i >= 0 && int64(i) < int64(len(d.strs)) {
		return d.strs[i]
	}
	return ""
}

func (d *dict) checkStr(field string, i int32) error {
	if !inRange(i, len(d.strs)) {
		return rangeError(field, i, stringTable, len(d.strs))
	}
	return nil
}

func (d *dict) checkAttributes() error {
	for i, a := range d.attrs {
		if err := d.checkStr(fmt.Sprintf("%s[%d].key_strindex", attributeTable, i), a.GetKeyStrindex()); err != nil {
			return err
		}
		if err := d.checkStr(fmt.Sprintf("%s[%d].unit_strindex", attributeTable, i), a.GetUnitStrindex()); err != nil {
			return err
		}
		if _, _, err := d.value(a.GetValue()); err != nil {
			return fmt.Errorf("%s[%d].value: %w", attributeTable, i, err)
		}
	}
	return nil
}

// value renders an attribute value as a label value. ok is false for values
// that make no label: absent ones, arrays and key-value lists.
func (d *dict) value(v *commonpb.AnyValue) (s string, ok bool, err error) {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		// Decoded requests are valid UTF-8; Convert's callers may not be.
		return strings.ToValidUTF8(x.StringValue, "\uFFFD"), true, nil
	case *commonpb.AnyValue_StringValueStrindex:
		if err := d.checkStr("string_value_strindex", x.StringValueStrindex); err != nil {
			return "", false, err
		}
		return d.str(x.StringValueStrindex), true, nil
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue), true, nil
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10), true, nil
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64), true, nil
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue), true, nil
	}
	return "", false, nil
}

// attr returns the value of the first of idx's attributes with key key.
// idx must have been checked.
func (d *dict) attr(idx []int32, key string) string {
	for _, i := range idx {
		a := at(d.attrs, i)
		if d.str(a.GetKeyStrindex()) == key {
			s, _, _ := d.value(a.GetValue())
			return s
		}
	}
	return ""
}

func (d *dict) checkFunctions(funcs []*profilespb.Function) error {
	for i, f := range funcs {
		for _, c := range []struct {
			field string
			idx   int32
		}{
			{"name_strindex", f.GetNameStrindex()},
			{"system_name_strindex", f.GetSystemNameStrindex()},
			{"filename_strindex", f.GetFilenameStrindex()},
		} {
			if err := d.checkStr(fmt.Sprintf("%s[%d].%s", functionTable, i, c.field), c.idx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *dict) mappings(table []*profilespb.Mapping) ([]mapping, error) {
	out := make([]mapping, len(table))
	for i, m := range table {
		if err := d.checkStr(fmt.Sprintf("%s[%d].filename_strindex", mappingTable, i), m.GetFilenameStrindex()); err != nil {
			return nil, err
		}
		idx := m.GetAttributeIndices()
		if err := checkEach(fmt.Sprintf("%s[%d].attribute_indices", mappingTable, i), idx, attributeTable, len(d.attrs)); err != nil {
			return nil, err
		}
		out[i] = mapping{
			file:    d.str(m.GetFilenameStrindex()),
			buildID: d.buildID(idx),
			start:   m.GetMemoryStart(),
			offset:  m.GetFileOffset(),
		}
	}
	return out, nil
}

// buildID prefers the GNU build ID, which debug files are indexed by, then
// Go's, then the eBPF profiler's file hash.
func (d *dict) buildID(idx []int32) string {
	for _, key := range []string{attrBuildIDGNU, attrBuildIDGo, attrBuildIDHtlhash} {
		if id := d.attr(idx, key); id != "" {
			return id
		}
	}
	return ""
}

// relative turns a location's address into an object-relative one. An
// address below the mapping (the spec says it SHOULD be inside) is kept as
// is rather than wrapped around.
func (m mapping) relative(addr uint64) uint64 {
	if addr < m.start {
		return addr
	}
	return addr - m.start + m.offset
}

func (d *dict) addLocations(locs []*profilespb.Location, funcs []*profilespb.Function, maps []mapping) error {
	d.locFrames = make([][]int32, len(locs))
	for i, loc := range locs {
		if err := d.checkLocation(loc, len(funcs), len(maps)); err != nil {
			return fmt.Errorf("%s[%d].%w", locationTable, i, err)
		}
		frames := d.locationFrames(loc, funcs, at(maps, loc.GetMappingIndex()))
		ids := make([]int32, len(frames))
		for j, f := range frames {
			ids[j] = d.intern(f)
		}
		d.locFrames[i] = ids
	}
	return nil
}

func (d *dict) checkLocation(loc *profilespb.Location, nfuncs, nmaps int) error {
	if i := loc.GetMappingIndex(); !inRange(i, nmaps) {
		return rangeError("mapping_index", i, mappingTable, nmaps)
	}
	for j, ln := range loc.GetLines() {
		if i := ln.GetFunctionIndex(); !inRange(i, nfuncs) {
			return rangeError(fmt.Sprintf("lines[%d].function_index", j), i, functionTable, nfuncs)
		}
	}
	return checkEach("attribute_indices", loc.GetAttributeIndices(), attributeTable, len(d.attrs))
}

// locationFrames returns a location's frames, leaf (innermost inlined
// function) first. loc must have been checked.
func (d *dict) locationFrames(loc *profilespb.Location, funcs []*profilespb.Function, m mapping) []model.Frame {
	file := m.file
	if d.attr(loc.GetAttributeIndices(), attrFrameType) == frameTypeKernel && (file == "" || file == kernelImage) {
		file = kernelMapping
	}
	addr := m.relative(loc.GetAddress())
	lines := loc.GetLines()
	if len(lines) == 0 {
		return []model.Frame{{Mapping: file, BuildID: m.buildID, Address: addr}}
	}
	out := make([]model.Frame, len(lines))
	for j, ln := range lines {
		fn := at(funcs, ln.GetFunctionIndex())
		f := model.Frame{
			Function: d.str(fn.GetNameStrindex()),
			File:     d.str(fn.GetFilenameStrindex()),
			Line:     ln.GetLine(),
			Inlined:  j < len(lines)-1,
			Mapping:  file,
			BuildID:  m.buildID,
		}
		if f.Function == "" {
			f.Function = d.str(fn.GetSystemNameStrindex())
		}
		if f.Function == "" {
			f.Address = addr // unsymbolized: keep what symbolizing it later needs
		}
		out[j] = f
	}
	return out
}

func (d *dict) intern(f model.Frame) int32 {
	if id, ok := d.frameIDs[f]; ok {
		return id
	}
	id := int32(len(d.frames))
	d.frames = append(d.frames, f)
	d.frameIDs[f] = id
	return id
}

func (d *dict) checkStacks() error {
	for i, s := range d.stacks {
		field := fmt.Sprintf("%s[%d].location_indices", stackTable, i)
		if err := checkEach(field, s.GetLocationIndices(), locationTable, len(d.locFrames)); err != nil {
			return err
		}
	}
	return nil
}

// stack returns the frame ids of stack i, leaf first, and a key equal for
// equal stacks. It converts each stack once per request.
func (d *dict) stack(i int32, maxDepth int) ([]int32, string, error) {
	if !inRange(i, len(d.stacks)) {
		return nil, "", rangeError("stack_index", i, stackTable, len(d.stacks))
	}
	if len(d.stacks) == 0 || d.stackDone[i] {
		return at(d.stackIDs, i), at(d.stackKeys, i), nil
	}
	var ids []int32
	for _, l := range d.stacks[i].GetLocationIndices() {
		ids = append(ids, at(d.locFrames, l)...)
		if len(ids) > maxDepth {
			return nil, "", limitError("%s[%d] has more than %d frames", stackTable, i, maxDepth)
		}
	}
	d.stackDone[i], d.stackIDs[i], d.stackKeys[i] = true, ids, stackKey(ids)
	return ids, d.stackKeys[i], nil
}

func stackKey(ids []int32) string {
	b := make([]byte, 4*len(ids))
	for i, id := range ids {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(id))
	}
	return string(b)
}

type valueType struct{ typ, unit string }

func (d *dict) valueType(field string, vt *profilespb.ValueType) (valueType, error) {
	if err := d.checkStr(field+".type_strindex", vt.GetTypeStrindex()); err != nil {
		return valueType{}, err
	}
	if err := d.checkStr(field+".unit_strindex", vt.GetUnitStrindex()); err != nil {
		return valueType{}, err
	}
	return valueType{d.str(vt.GetTypeStrindex()), d.str(vt.GetUnitStrindex())}, nil
}

// overlay returns base with the dictionary attributes idx added over it.
func (d *dict) overlay(base attrs, field string, idx []int32) (attrs, error) {
	if err := checkEach(field, idx, attributeTable, len(d.attrs)); err != nil {
		return nil, err
	}
	out := make(attrs, len(base)+len(idx))
	maps.Copy(out, base)
	for _, i := range idx {
		a := at(d.attrs, i)
		if v, ok, _ := d.value(a.GetValue()); ok {
			out[d.str(a.GetKeyStrindex())] = v
		}
	}
	return out, nil
}

// resourceAttrs reads a resource's attributes, whose keys and string values
// may be given inline or, in profiles, as string_table indices.
func (d *dict) resourceAttrs(r *resourcepb.Resource) (attrs, error) {
	out := make(attrs, len(r.GetAttributes()))
	for j, kv := range r.GetAttributes() {
		key, err := d.key(kv)
		if err != nil {
			return nil, fmt.Errorf("attributes[%d]: %w", j, err)
		}
		v, ok, err := d.value(kv.GetValue())
		if err != nil {
			return nil, fmt.Errorf("attributes[%d].value: %w", j, err)
		}
		if ok {
			out[key] = v
		}
	}
	return out, nil
}

func (d *dict) key(kv *commonpb.KeyValue) (string, error) {
	i := kv.GetKeyStrindex()
	if i == 0 {
		return kv.GetKey(), nil
	}
	if kv.GetKey() != "" {
		return "", fmt.Errorf("both key %q and key_strindex %d set", kv.GetKey(), i)
	}
	if err := d.checkStr("key_strindex", i); err != nil {
		return "", err
	}
	return d.str(i), nil
}
