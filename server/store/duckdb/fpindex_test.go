package duckdb

import (
	"math/rand/v2"
	"testing"
)

// TestFPIndexMatchesMap checks the table against Go's map through growth,
// replaced keys and colliding low bits.
func TestFPIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var idx fpIndex
	want := map[uint64]uint32{}
	for i := 1; i <= 50000; i++ {
		fp := rng.Uint64()
		switch i % 5 {
		case 0: // same low bits as many others: long probe runs
			fp = uint64(i) << 40
		case 1: // an existing key gets a new id
			for k := range want {
				fp = k
				break
			}
		}
		idx.put(fp, uint32(i))
		want[fp] = uint32(i)
	}
	if idx.n != len(want) {
		t.Errorf("%d entries, want %d", idx.n, len(want))
	}
	for fp, id := range want {
		if got, ok := idx.get(fp); !ok || got != id {
			t.Fatalf("get(%#x) = %d, %v; want %d", fp, got, ok, id)
		}
	}
	for range 10000 {
		fp := rng.Uint64()
		if _, in := want[fp]; in {
			continue
		}
		if got, ok := idx.get(fp); ok {
			t.Fatalf("get(%#x) = %d for a key never put", fp, got)
		}
	}
	var empty fpIndex
	if _, ok := empty.get(7); ok {
		t.Error("empty index found a key")
	}
}
