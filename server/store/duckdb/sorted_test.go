package duckdb

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSortedStacks(t *testing.T) {
	tests := []struct {
		name       string
		ids        []uint32
		values     []int64
		wantIDs    []uint32
		wantValues []int64
	}{
		{"empty", nil, nil, []uint32{}, []int64{}},
		{"one", []uint32{7}, []int64{3}, []uint32{7}, []int64{3}},
		{"unsorted", []uint32{9, 2, 5}, []int64{1, 2, 3}, []uint32{2, 5, 9}, []int64{2, 3, 1}},
		{"duplicates summed", []uint32{4, 1, 4, 4, 1}, []int64{1, 10, 100, 1000, 20}, []uint32{1, 4}, []int64{30, 1101}},
		{"extreme ids", []uint32{1<<32 - 1, 0, 1<<32 - 1}, []int64{5, 6, 7}, []uint32{0, 1<<32 - 1}, []int64{6, 12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, values := sortedStacks(tt.ids, tt.values)
			if !slices.Equal(ids, tt.wantIDs) || !slices.Equal(values, tt.wantValues) {
				t.Errorf("sortedStacks(%v, %v) = %v, %v; want %v, %v", tt.ids, tt.values, ids, values, tt.wantIDs, tt.wantValues)
			}
		})
	}
}

// TestSortedStacksMap checks sortedStacks against summing in a map, on
// random profiles with repeated ids.
func TestSortedStacksMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := rng.IntN(600)
		ids, values := make([]uint32, n), make([]int64, n)
		sum := map[uint32]int64{}
		for i := range ids {
			ids[i], values[i] = uint32(rng.IntN(400)), rng.Int64N(1e9)
			sum[ids[i]] += values[i]
		}
		got, vals := sortedStacks(ids, values)
		if len(got) != len(sum) || !slices.IsSorted(got) {
			t.Fatalf("%d ids, sorted %v, want %d distinct", len(got), slices.IsSorted(got), len(sum))
		}
		for i, id := range got {
			if vals[i] != sum[id] {
				t.Fatalf("id %d: %d, want %d", id, vals[i], sum[id])
			}
		}
	}
}
