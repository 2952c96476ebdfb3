package recorder

import (
	"slices"
	"testing"
)

// TestStackCacheLRU: with room for two one-frame stacks, a third evicts the
// least recently used, where putting again or touching (an interval still
// naming the stack) counts as use.
func TestStackCacheLRU(t *testing.T) {
	const slab, entry = minCap * entBytes, mapEntryBytes + 8
	key := func(h uint64) stackKey { return stackKey{pid: 1, hash: h} }
	tests := []struct {
		name string
		use  func(c *stackCache)
		want []uint64 // hashes kept
	}{
		{"oldest goes", func(c *stackCache) {}, []uint64{2, 3}},
		{"touch keeps", func(c *stackCache) { c.touch(key(1)) }, []uint64{1, 3}},
		{"put again keeps", func(c *stackCache) { c.put(key(1), []uint64{0x10}, nil) }, []uint64{1, 3}},
		{"touching the unknown is harmless", func(c *stackCache) { c.touch(key(9)) }, []uint64{2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newStackCache(slab + 2*entry + 8)
			c.put(key(1), []uint64{0x10}, nil)
			c.put(key(2), []uint64{0x20}, nil)
			tt.use(&c)
			c.put(key(3), nil, []uint64{0x30})
			var kept []uint64
			for h := range uint64(10) {
				if u, k, ok := c.get(key(h)); ok {
					kept = append(kept, h)
					if got := append(u, k...); !slices.Equal(got, []uint64{h * 0x10}) {
						t.Errorf("stack %d reads back as %#x", h, got)
					}
				}
			}
			if !slices.Equal(kept, tt.want) || c.bytes > c.max {
				t.Errorf("kept %v in %d bytes (max %d), want %v", kept, c.bytes, c.max, tt.want)
			}
		})
	}
}
