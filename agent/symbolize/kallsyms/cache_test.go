package kallsyms

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `ffffffff81000000 T _stext
ffffffff81000100 T do_one
ffffffff81000200 t helper
ffffffff81000300 W weak_fn
ffffffffc0000000 t mod_fn	[mymod]
ffffffffc0000100 T mod_other	[mymod]
ffffffff82000000 D _etext
`

func TestCacheRoundTrip(t *testing.T) {
	orig, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("boot-1")
	got, err := decodeCache(encodeCache(key, orig), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []uint64{0xffffffff81000104, 0xffffffff81000200, 0xffffffff81000350, 0xffffffffc0000105, 0xffffffff82000001, 0x1000} {
		wn, wm, wok := orig.Lookup(addr)
		gn, gm, gok := got.Lookup(addr)
		if wn != gn || wm != gm || wok != gok {
			t.Errorf("Lookup(%#x) = %q %q %v after the cache, %q %q %v before", addr, gn, gm, gok, wn, wm, wok)
		}
	}
	if got.Len() != orig.Len() {
		t.Errorf("Len %d, want %d", got.Len(), orig.Len())
	}
	if _, err := decodeCache(encodeCache(key, orig), []byte("boot-2")); err == nil {
		t.Error("a cache from another boot was accepted")
	}
	enc := encodeCache(key, orig)
	for _, cut := range []int{0, 10, len(enc) / 2, len(enc) - 1} {
		if _, err := decodeCache(enc[:cut], key); err == nil {
			t.Errorf("a cache truncated to %d bytes was accepted", cut)
		}
	}
	bad := append([]byte(nil), enc...)
	bad[len(bad)-3] ^= 0xff // inside a name or module: may be fine; flip an address instead
	addrAt := len(cacheMagic) + 8 + len(key) + 5*8
	addrAt += padTo8(addrAt)
	copy(bad[addrAt:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if _, err := decodeCache(bad, key); err == nil {
		t.Error("a cache with unsorted addresses was accepted")
	}
	// Misaligned (as a buffer at an odd address would be): decoded by copy,
	// with the same answers.
	odd := append(make([]byte, 1, len(enc)+1), enc...)[1:]
	copied, err := decodeCache(odd, key)
	if err != nil {
		t.Fatalf("misaligned cache: %v", err)
	}
	for _, addr := range []uint64{0xffffffff81000104, 0xffffffffc0000105, 0x1000} {
		wn, wm, wok := orig.Lookup(addr)
		if gn, gm, gok := copied.Lookup(addr); wn != gn || wm != gm || wok != gok {
			t.Errorf("misaligned: Lookup(%#x) = %q %q %v, want %q %q %v", addr, gn, gm, gok, wn, wm, wok)
		}
	}
}

// TestLoadCachedLive reads the real kernel's symbols twice: the second time
// from the cache, with the same answers.
func TestLoadCachedLive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read kernel addresses")
	}
	dir := t.TempDir()
	first, err := LoadCached(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cacheFile)); err != nil {
		t.Fatalf("no cache written: %v", err)
	}
	second, err := LoadCached(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(first.addrs); i += 997 {
		a := first.addrs[i] + 1
		fn, fm, _ := first.Lookup(a)
		sn, sm, _ := second.Lookup(a)
		if fn != sn || fm != sm {
			t.Fatalf("Lookup(%#x): %q from /proc, %q from the cache", a, fn, sn)
		}
	}
}
