package elfsym

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortMatchesLess: the key sort, its in-place permutation and the
// per-address alias sort order a table as Less defines, without losing or
// repeating a symbol, on tables of many aliases (few distinct addresses)
// and of almost none.
func TestSortMatchesLess(t *testing.T) {
	strtab := []byte("\x00malloc\x00__libc_malloc\x00_malloc\x00free\x00cfree\x00x\x00")
	names := []uint32{1, 8, 22, 30, 35, 41}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, spread := range []uint64{4, 1 << 20} {
		for range 50 {
			n := rng.IntN(300)
			b := symBuilder{strtab: strtab}
			for range n {
				b.syms = append(b.syms, sym{addr: 0x400000 + rng.Uint64N(spread), size: uint32(rng.IntN(3)), name: names[rng.IntN(len(names))]})
				b.meta = append(b.meta, uint8(rng.IntN(16)))
			}
			before := entries(b)
			b.sort()
			for i := 1; i < len(b.syms); i++ {
				if b.Less(i, i-1) {
					t.Fatalf("spread %d, %d symbols: %v sorted before %v", spread, n, b.syms[i-1], b.syms[i])
				}
			}
			if !slices.Equal(before, entries(b)) {
				t.Fatalf("spread %d, %d symbols: the sort lost or repeated symbols", spread, n)
			}
		}
	}
}

type entry struct {
	s sym
	m uint8
}

// entries lists b's symbols in a canonical order, to compare as multisets.
func entries(b symBuilder) []entry {
	out := make([]entry, len(b.syms))
	for i := range b.syms {
		out[i] = entry{b.syms[i], b.meta[i]}
	}
	slices.SortFunc(out, func(p, q entry) int {
		return cmp.Or(cmp.Compare(p.s.addr, q.s.addr), cmp.Compare(p.s.name, q.s.name), cmp.Compare(p.s.size, q.s.size), cmp.Compare(p.m, q.m))
	})
	return out
}
