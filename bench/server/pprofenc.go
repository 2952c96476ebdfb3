package main

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"

	"github.com/klauspost/compress/zstd"
)

// Payloads are built without pprof's encoder so that a request costs the
// generator almost nothing. A request body is what the agent sends
// (docs/wire.md: zstd at the fastest level, Content-Encoding: zstd), as two
// zstd frames, which zstd readers (the server's included) read as one
// stream:
//
//  1. a small frame, raw (not compressed) and built per request: the
//     first string-table entries ("", node, then pid, version and build ID
//     of each process) and time_nanos;
//  2. a large frame, compressed once: everything else (sample types,
//     samples, mappings, locations, functions, the rest of the string
//     table, period, duration), pre-generated per node group.
//
// Protobuf concatenates repeated fields and pprof resolves string indexes
// after decoding the whole message, so the concatenation decodes to the
// profile an agent would send: sample labels of frame 2 refer to the node
// and process strings of frame 1 by their fixed indexes.

// Per-request string indexes: 0 is "", 1 the node, then three per process.
const strNode = 1

func strPID(slot int) int64     { return int64(2 + 3*slot) }
func strVersion(slot int) int64 { return int64(3 + 3*slot) }
func strBuildID(slot int) int64 { return int64(4 + 3*slot) }
func dynStrings(slots int) int64 {
	return int64(2 + 3*slots)
}

// variant is one pre-generated payload of a node group.
type variant struct {
	static  []byte  // zstd frame 2
	rawSize int     // its uncompressed size
	stacks  []int   // per process: distinct stacks (stack values stored)
	cpu     []int64 // per process: cpu nanoseconds
}

// pb appends protobuf wire format.
type pb []byte

func (b pb) varint(x uint64) pb { return binary.AppendUvarint(b, x) }

func (b pb) key(field, wire int) pb { return b.varint(uint64(field)<<3 | uint64(wire)) }

// uint appends a varint field; zero is the default and omitted.
func (b pb) uint(field int, x uint64) pb {
	if x == 0 {
		return b
	}
	return b.key(field, 0).varint(x)
}

func (b pb) bytes(field int, p []byte) pb {
	return append(b.key(field, 2).varint(uint64(len(p))), p...)
}

func (b pb) str(field int, s string) pb {
	return append(b.key(field, 2).varint(uint64(len(s))), s...)
}

func varintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func (b pb) packed(field int, xs []uint64) pb {
	n := 0
	for _, x := range xs {
		n += varintLen(x)
	}
	b = b.key(field, 2).varint(uint64(n))
	for _, x := range xs {
		b = b.varint(x)
	}
	return b
}

// strtab assigns string-table indexes after the per-request ones.
type strtab struct {
	index map[string]int64
	list  []string
	base  int64
}

func (t *strtab) id(s string) int64 {
	if i, ok := t.index[s]; ok {
		return i
	}
	i := t.base + int64(len(t.list))
	t.index[s] = i
	t.list = append(t.list, s)
	return i
}

// Field numbers of profile.proto's Profile message.
const (
	fSampleType    = 1
	fSample        = 2
	fMapping       = 3
	fLocation      = 4
	fFunction      = 5
	fStringTable   = 6
	fTimeNanos     = 9
	fDurationNanos = 10
	fPeriodType    = 11
	fPeriod        = 12
)

const mappingStart = 0x400000

// buildVariant draws each process's samples and encodes frame 2 with enc.
func buildVariant(r *rand.Rand, u *universe, f *fleet, g *group, stamp []uint32, gen *uint32, enc *zstd.Encoder) *variant {
	slots := len(g.services)
	t := &strtab{index: map[string]int64{}, base: dynStrings(slots)}
	v := &variant{stacks: make([]int, slots), cpu: make([]int64, slots)}
	var out, msg, sub pb
	vt := func(field int, typ, unit string) {
		sub = sub[:0].uint(1, uint64(t.id(typ))).uint(2, uint64(t.id(unit)))
		out = out.bytes(field, sub)
	}
	vt(fSampleType, "samples", "count")
	vt(fSampleType, "cpu", "nanoseconds")

	fnID := map[int32]uint64{} // universe function → pprof id
	var fnOrder []int32        // in id order
	type slotLoc struct{ slot, loc int32 }
	locID := map[slotLoc]uint64{} // (process, universe location) → pprof id
	var locOrder []slotLoc
	keys := [7]int64{t.id("node"), t.id("pid"), t.id("comm"), t.id("exe"), t.id("build_id"), t.id("service"), t.id("version")}
	var locs []uint64
	for slot, si := range g.services {
		s := f.services[si]
		*gen++
		k := 200 + r.IntN(201)
		ids, counts := s.drawStacks(r, k, stamp, *gen)
		v.stacks[slot] = len(ids)
		comm, exe, svc := t.id(s.name), t.id(s.exe), t.id(s.name)
		vals := [7]int64{strNode, strPID(slot), comm, exe, strBuildID(slot), svc, strVersion(slot)}
		for i, id := range ids {
			locs = locs[:0]
			for _, l := range u.stacks[id] {
				key := slotLoc{int32(slot), l}
				lid, ok := locID[key]
				if !ok {
					lid = uint64(len(locOrder) + 1)
					locID[key] = lid
					locOrder = append(locOrder, key)
				}
				locs = append(locs, lid)
			}
			msg = msg[:0].packed(1, locs)
			c := counts[i]
			v.cpu[slot] += c * periodNS
			msg = msg.packed(2, []uint64{uint64(c), uint64(c * periodNS)})
			for j := range keys {
				sub = sub[:0].uint(1, uint64(keys[j])).uint(2, uint64(vals[j]))
				msg = msg.bytes(3, sub)
			}
			out = out.bytes(fSample, msg)
		}
	}
	for slot, si := range g.services {
		s := f.services[si]
		msg = msg[:0].uint(1, uint64(slot+1)).uint(2, mappingStart).uint(3, mappingStart+0x4000000).
			uint(5, uint64(t.id(s.exe))).uint(6, uint64(strBuildID(slot))).
			uint(7, 1).uint(8, 1).uint(9, 1).uint(10, 1)
		out = out.bytes(fMapping, msg)
	}
	for i, key := range locOrder {
		l := u.locs[key.loc]
		fid, ok := fnID[l.fn]
		if !ok {
			fid = uint64(len(fnOrder) + 1)
			fnID[l.fn] = fid
			fnOrder = append(fnOrder, l.fn)
		}
		addr := mappingStart + 0x1000 + uint64(l.fn)*0x800 + uint64(l.line*4)%0x800
		sub = sub[:0].uint(1, fid).uint(2, uint64(l.line))
		msg = msg[:0].uint(1, uint64(i+1)).uint(2, uint64(key.slot+1)).uint(3, addr).bytes(4, sub)
		out = out.bytes(fLocation, msg)
	}
	for i, fi := range fnOrder {
		fn := &u.funcs[fi]
		name := uint64(t.id(fn.name))
		msg = msg[:0].uint(1, uint64(i+1)).uint(2, name).uint(3, name).uint(4, uint64(t.id(fn.file))).uint(5, uint64(fn.startLine))
		out = out.bytes(fFunction, msg)
	}
	vt(fPeriodType, "cpu", "nanoseconds")
	out = out.uint(fPeriod, periodNS).uint(fDurationNanos, uint64(intervalNS))
	for _, s := range t.list {
		out = out.str(fStringTable, s)
	}
	v.rawSize = len(out)
	v.static = enc.EncodeAll(out, nil)
	return v
}

// newEncoder returns the agent's zstd encoder: the fastest level, and
// one goroutine, as EncodeAll uses.
func newEncoder() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err) // constant options
	}
	return enc
}

const intervalNS = 10_000_000_000

// dynamicFrame builds frame 1 of a request into dst.
func dynamicFrame(dst, scratch []byte, f *fleet, node int, timeNanos int64) ([]byte, []byte) {
	ni := &f.nodeInfo[node]
	g := f.groups[ni.group]
	b := pb(scratch[:0]).str(fStringTable, "").str(fStringTable, ni.name)
	for slot, si := range g.services {
		s := f.services[si]
		ver := s.versions[ni.version[slot]]
		b = b.str(fStringTable, strconv.Itoa(ni.pids[slot])).str(fStringTable, ver.name).str(fStringTable, ver.buildID)
	}
	b = b.uint(fTimeNanos, uint64(timeNanos))
	return rawZstd(dst[:0], b), b
}

// maxRawBlock is the largest zstd block.
const maxRawBlock = 128 << 10

// rawZstd appends a zstd frame holding data uncompressed (raw blocks):
// no compressor state, no CPU. The frame is single-segment (its window is
// its size) and declares its size; it has no checksum, which is optional.
func rawZstd(dst, data []byte) []byte {
	dst = append(dst, 0x28, 0xb5, 0x2f, 0xfd)
	switch n := uint64(len(data)); {
	case n < 256:
		dst = append(dst, 0x20, byte(n)) // single segment, 1-byte size
	case n < 65536+256:
		dst = binary.LittleEndian.AppendUint16(append(dst, 0x60), uint16(n-256)) // 2-byte size, less 256
	default:
		dst = binary.LittleEndian.AppendUint32(append(dst, 0xa0), uint32(n)) // 4-byte size
	}
	rest := data
	for {
		n := min(len(rest), maxRawBlock)
		last := uint32(0)
		if n == len(rest) {
			last = 1
		}
		h := last | uint32(n)<<3 // block type 0: raw
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
		dst = append(dst, rest[:n]...)
		rest = rest[n:]
		if last == 1 {
			return dst
		}
	}
}
