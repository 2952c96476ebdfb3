package elfsym

import (
	"bytes"
	"math"
	"slices"
	"sort"
)

// symBuilder sorts symbols together with their build-time meta bits, so the
// final index needs no room for them.
type symBuilder struct {
	syms   []sym
	meta   []uint8
	strtab []byte
}

// sort orders the symbols as Less does. Most addresses are distinct, so it
// sorts integer keys (address, index) first, several times faster than
// sort.Sort through Less, then orders each run of aliases with Less.
func (b *symBuilder) sort() {
	n := len(b.syms)
	if n == 0 {
		return
	}
	lo, hi := b.syms[0].addr, b.syms[0].addr
	for _, s := range b.syms {
		lo, hi = min(lo, s.addr), max(hi, s.addr)
	}
	if hi-lo >= 1<<32 || n >= 1<<32 { // the key does not fit 64 bits
		sort.Sort(b)
		return
	}
	keys := make([]uint64, n)
	for i, s := range b.syms {
		keys[i] = (s.addr-lo)<<32 | uint64(i)
	}
	slices.Sort(keys)
	b.permute(keys)
	syms := b.syms
	for i := 0; i < n; {
		j := i + 1
		for j < n && syms[j].addr == syms[i].addr {
			j++
		}
		if j-i > 1 {
			sort.Sort(&symBuilder{syms: syms[i:j], meta: b.meta[i:j], strtab: b.strtab})
		}
		i = j
	}
}

// permute moves the symbol at index uint32(keys[i]) to i, in place, one
// cycle of the permutation at a time; it consumes keys.
func (b *symBuilder) permute(keys []uint64) {
	const done = math.MaxUint64
	for i := range keys {
		if keys[i] == done {
			continue
		}
		s, m := b.syms[i], b.meta[i]
		for j := i; ; {
			k := int(uint32(keys[j]))
			keys[j] = done
			if k == i {
				b.syms[j], b.meta[j] = s, m
				break
			}
			b.syms[j], b.meta[j] = b.syms[k], b.meta[k]
			j = k
		}
	}
}

func (b *symBuilder) Len() int { return len(b.syms) }

func (b *symBuilder) Swap(i, j int) {
	b.syms[i], b.syms[j] = b.syms[j], b.syms[i]
	b.meta[i], b.meta[j] = b.meta[j], b.meta[i]
}

// Less orders by address, then puts the preferred alias first: typed over
// untyped, global over weak over local, then the name with the fewest
// leading underscores (malloc over __libc_malloc), shortest, bytewise.
// The order depends only on the symbols, never on their order in the file.
func (b *symBuilder) Less(i, j int) bool {
	si, sj := b.syms[i], b.syms[j]
	if si.addr != sj.addr {
		return si.addr < sj.addr
	}
	if ri, rj := rank(b.meta[i]), rank(b.meta[j]); ri != rj {
		return ri < rj
	}
	ni, nj := cstring(b.strtab, uint64(si.name)), cstring(b.strtab, uint64(sj.name))
	if ui, uj := underscores(ni), underscores(nj); ui != uj {
		return ui < uj
	}
	if len(ni) != len(nj) {
		return len(ni) < len(nj)
	}
	return bytes.Compare(ni, nj) < 0
}

func rank(m uint8) uint8 { return (m&metaNoType)<<1 | m&rankMask }

func underscores(name []byte) int {
	n := 0
	for n < len(name) && name[n] == '_' {
		n++
	}
	return n
}

// dedup keeps the preferred symbol per address and drops untyped labels
// that fall inside a sized function, which would otherwise hide it.
func (b *symBuilder) dedup() {
	out := 0
	var funcEnd uint64 // end of the furthest-reaching function with a real size
	for i, s := range b.syms {
		m := b.meta[i]
		if out > 0 && b.syms[out-1].addr == s.addr {
			if b.meta[out-1]&metaGuessed != 0 && m&metaGuessed == 0 {
				b.syms[out-1].size = s.size // an alias knows the real size
				b.meta[out-1] &^= metaGuessed
				if b.meta[out-1]&metaNoType == 0 {
					funcEnd = max(funcEnd, s.addr+uint64(s.size))
				}
			}
			continue
		}
		if m&metaNoType != 0 && s.addr < funcEnd {
			continue
		}
		if m&(metaNoType|metaGuessed) == 0 {
			funcEnd = max(funcEnd, s.addr+uint64(s.size))
		}
		b.syms[out], b.meta[out] = s, m
		out++
	}
	b.syms, b.meta = b.syms[:out], b.meta[:out]
}

// fillSizes ends each size-less symbol at the next symbol, or at the end of
// its section if that comes first.
func (b *symBuilder) fillSizes() {
	for i := range b.syms {
		if b.meta[i]&metaGuessed == 0 || i+1 == len(b.syms) {
			continue
		}
		s := &b.syms[i]
		gap := uint32(min(b.syms[i+1].addr-s.addr, math.MaxUint32))
		if s.size == 0 || gap < s.size {
			s.size = gap
		}
	}
}
