package agent

import (
	"slices"
	"testing"
)

func TestStackCacheBounds(t *testing.T) {
	c := newStackCache(8, 12)
	user, kernel := []uint64{1, 2}, []uint64{0xfff1}
	c.put(1, 100, user, kernel, 1)
	user[0] = 9 // put must have copied
	if u, k, ok := c.get(1, 100, 2); !ok || !slices.Equal(u, []uint64{1, 2}) || !slices.Equal(k, []uint64{0xfff1}) {
		t.Fatalf("get = %v %v %v, want the stack as put", u, k, ok)
	}
	if _, _, ok := c.get(2, 100, 2); ok {
		t.Error("a hash of pid 1 was found for pid 2")
	}
	// Per process: the 9th stack evicts the least recently used quarter
	// (2 of 9); stack 100 was used last, at time 20, so it stays.
	c.get(1, 100, 20)
	for h := uint64(1); h <= 8; h++ {
		c.put(1, h, []uint64{h}, nil, 2+h)
	}
	if c.len() != 7 || c.evicted != 2 {
		t.Fatalf("%d stacks, %d evicted; want 7 and 2", c.len(), c.evicted)
	}
	for h, want := range map[uint64]bool{100: true, 1: false, 2: false, 3: true, 8: true} {
		if _, _, ok := c.get(1, h, 21); ok != want {
			t.Errorf("stack %d cached: %v, want %v", h, ok, want)
		}
	}
	// In total: pid 2 fills up to 12, and the fullest process (1) pays.
	for h := uint64(1); h <= 6; h++ {
		c.put(2, h, []uint64{h}, nil, 30+h)
	}
	if c.len() > 12 || len(c.byPID[2]) != 6 || len(c.byPID[1]) >= 7 {
		t.Errorf("%d stacks (pid 1: %d, pid 2: %d): want ≤ 12 with pid 2 whole", c.len(), len(c.byPID[1]), len(c.byPID[2]))
	}
	// The same stack again is not a second entry.
	n := c.len()
	c.put(2, 1, []uint64{1}, nil, 50)
	if c.len() != n {
		t.Errorf("re-putting a stack changed the count from %d to %d", n, c.len())
	}
	c.forget(2)
	if _, _, ok := c.get(2, 1, 51); ok || c.len() != len(c.byPID[1]) {
		t.Errorf("after forget: %d stacks, pid 1 has %d", c.len(), len(c.byPID[1]))
	}
}
