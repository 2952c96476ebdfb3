package duckdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// A value partition row holds one profile's (or one rollup bucket's)
// values packed into a BLOB: the count, then per stack, in increasing stack
// id order, the id's difference from the previous one and the value, all
// as unsigned varints. A profile's few hundred stacks are spread over a
// fleet's tens of thousands, so a difference takes one or two bytes where
// a stack id column took two or more even bit-packed, and a value (a
// sample count) one; a row per stack also cost DuckDB's appender and WAL
// per value, which was a third of the server's ingest CPU.
//
// ids must be strictly increasing; values must not be negative.
func appendPacked(dst []byte, ids []uint32, values []int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	var prev uint32
	for i, id := range ids {
		dst = binary.AppendUvarint(dst, uint64(id-prev))
		dst = binary.AppendUvarint(dst, uint64(values[i]))
		prev = id
	}
	return dst
}

var errPacked = errors.New("corrupt packed values")

// unpack calls fn for each (stack id, value) of a packed row, in id order.
func unpack(b []byte, fn func(id uint32, v int64)) error {
	return walkPacked(b, 1, fn)
}

// walkPacked is unpack with values times scale. It is the merge's inner
// loop (tens of millions of values for an hour of a fleet), so it reads
// one-byte varints, the common case, without a call.
func walkPacked(b []byte, scale int64, fn func(id uint32, v int64)) error {
	n, k := uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return fmt.Errorf("%w: bad count", errPacked)
	}
	b = b[k:]
	var id uint64
	for i := uint64(0); i < n; i++ {
		d, k1 := uvarint(b)
		if k1 <= 0 {
			return fmt.Errorf("%w: value %d of %d", errPacked, i, n)
		}
		v, k2 := uvarint(b[k1:])
		if k2 <= 0 || v > 1<<62 {
			return fmt.Errorf("%w: value %d of %d", errPacked, i, n)
		}
		b = b[k1+k2:]
		if id += d; id > 1<<32-1 || (i > 0 && d == 0) {
			return fmt.Errorf("%w: stack id out of order", errPacked)
		}
		fn(uint32(id), int64(v)*scale)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after the values", errPacked, len(b))
	}
	return nil
}

func uvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return binary.Uvarint(b)
}

// accumulator sums values by stack id over dense ids, remembering which
// ids it has met so that it can be emptied in time proportional to them.
type accumulator struct {
	sum  []int64
	seen []bool
	ids  []uint32
}

func (a *accumulator) add(id uint32, v int64) {
	if int(id) >= len(a.sum) {
		n := max(int(id)+1, 2*len(a.sum))
		a.sum = append(a.sum, make([]int64, n-len(a.sum))...)
		a.seen = append(a.seen, make([]bool, n-len(a.seen))...)
	}
	if !a.seen[id] {
		a.seen[id] = true
		a.ids = append(a.ids, id)
	}
	a.sum[id] += v
}

// packAndReset appends the sums, packed, to dst and empties a.
func (a *accumulator) packAndReset(dst []byte) []byte {
	slices.Sort(a.ids)
	vals := make([]int64, len(a.ids))
	for i, id := range a.ids {
		vals[i] = a.sum[id]
		a.sum[id], a.seen[id] = 0, false
	}
	dst = appendPacked(dst, a.ids, vals)
	a.ids = a.ids[:0]
	return dst
}

func (a *accumulator) empty() bool { return len(a.ids) == 0 }

// sized makes room for ids below n up front, so that add never grows.
func (a *accumulator) sized(n int) *accumulator {
	a.sum, a.seen = make([]int64, n), make([]bool, n)
	return a
}

// addAll adds b's sums into a and empties b.
func (a *accumulator) addAll(b *accumulator) {
	for _, id := range b.ids {
		a.add(id, b.sum[id])
		b.sum[id], b.seen[id] = 0, false
	}
	b.ids = b.ids[:0]
}
