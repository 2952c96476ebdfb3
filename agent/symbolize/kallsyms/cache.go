package kallsyms

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// cacheMagic starts a cache file; the digit is the format version.
const cacheMagic = "flightrec-kallsyms-1\n"

// LoadCached returns the running kernel's symbols, from dir when a cache
// there was written during this boot with the same modules loaded, else
// from /proc/kallsyms (and then refreshes the cache). The kernel spends
// ~30 ms of CPU generating /proc/kallsyms on every read; an agent restarted
// on a node (an upgrade, a crash) skips that. Any cache problem falls back
// to the real file: the cache can only save time, never change an answer.
func LoadCached(dir string) (*Table, error) {
	key, keyErr := cacheKey()
	path := filepath.Join(dir, "kallsyms.cache")
	if keyErr == nil && dir != "" {
		if b, err := os.ReadFile(path); err == nil {
			if t, err := decodeCache(b, key); err == nil {
				return t, nil
			}
		}
	}
	t, err := Load()
	if err != nil || keyErr != nil || dir == "" {
		return t, err
	}
	if err := writeCache(dir, path, key, t); err != nil {
		return t, nil // the symbols are good; only the next start is slower
	}
	return t, nil
}

// cacheKey identifies what the symbols depend on: the boot (kernel image
// and its randomized base) and the loaded modules (their addresses).
func cacheKey() ([]byte, error) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(boot)
	if mods, err := os.ReadFile("/proc/modules"); err == nil {
		h.Write(mods)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return h.Sum(nil), nil
}

func writeCache(dir, path string, key []byte, t *Table) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "kallsyms.cache.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(encodeCache(key, t)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// encodeCache lays the table out as: magic, key, counts, then the arrays,
// the name blocks and the module names, little-endian.
func encodeCache(key []byte, t *Table) []byte {
	var b bytes.Buffer
	b.WriteString(cacheMagic)
	putBytes(&b, key)
	le := binary.LittleEndian
	for _, n := range []int{t.n, len(t.addrs), len(t.mods), len(t.blob), len(t.modules)} {
		b.Write(le.AppendUint64(nil, uint64(n)))
	}
	for _, a := range t.addrs {
		b.Write(le.AppendUint64(nil, a))
	}
	for _, n := range t.names {
		b.Write(le.AppendUint32(nil, n))
	}
	for _, m := range t.mods {
		b.Write(le.AppendUint16(nil, m))
	}
	for _, blk := range t.blob {
		putBytes(&b, blk)
	}
	for _, m := range t.modules {
		putBytes(&b, []byte(m))
	}
	return b.Bytes()
}

func putBytes(b *bytes.Buffer, p []byte) {
	b.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(p))))
	b.Write(p)
}

// cacheReader reads encodeCache's layout, failing on any inconsistency.
type cacheReader struct {
	b   []byte
	err error
}

var errBadCache = errors.New("kallsyms cache is damaged")

func (r *cacheReader) take(n uint64) []byte {
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errBadCache
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *cacheReader) u64() uint64 {
	p := r.take(8)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

func (r *cacheReader) bytes() []byte { return r.take(r.u64()) }

func decodeCache(b, key []byte) (*Table, error) {
	if !bytes.HasPrefix(b, []byte(cacheMagic)) {
		return nil, errBadCache
	}
	r := &cacheReader{b: b[len(cacheMagic):]}
	if !bytes.Equal(r.bytes(), key) {
		return nil, fmt.Errorf("kallsyms cache is from another boot or module set")
	}
	n, nAddrs, nMods, nBlob, nModules := r.u64(), r.u64(), r.u64(), r.u64(), r.u64()
	if r.err != nil || nAddrs > uint64(len(r.b))/12 || (nMods != 0 && nMods != nAddrs) || nBlob > 1<<16 || nModules > 1<<16 {
		return nil, errBadCache
	}
	t := &Table{n: int(n), addrs: make([]uint64, nAddrs), names: make([]uint32, nAddrs)}
	le := binary.LittleEndian
	for i := range t.addrs {
		t.addrs[i] = r.u64()
	}
	for i, p := 0, r.take(4*nAddrs); p != nil && i < len(t.names); i++ {
		t.names[i] = le.Uint32(p[4*i:])
	}
	if nMods > 0 {
		t.mods = make([]uint16, nMods)
		for i, p := 0, r.take(2*nMods); p != nil && i < len(t.mods); i++ {
			t.mods[i] = le.Uint16(p[2*i:])
		}
	}
	for i := uint64(0); i < nBlob && r.err == nil; i++ {
		t.blob = append(t.blob, bytes.Clone(r.bytes()))
	}
	for i := uint64(0); i < nModules && r.err == nil; i++ {
		t.modules = append(t.modules, string(r.bytes()))
	}
	if r.err != nil || len(r.b) != 0 || !t.consistent() {
		return nil, errBadCache
	}
	return t, nil
}

// consistent checks what Lookup relies on, so a damaged cache is rejected
// rather than trusted.
func (t *Table) consistent() bool {
	for i := 1; i < len(t.addrs); i++ {
		if t.addrs[i] <= t.addrs[i-1] {
			return false
		}
	}
	for _, nm := range t.names {
		if nm == noName {
			continue
		}
		blk, off := nm>>16, nm&0xffff
		if int(blk) >= len(t.blob) || int(off) >= len(t.blob[blk]) {
			return false
		}
	}
	for _, m := range t.mods {
		if int(m) >= len(t.modules) {
			return false
		}
	}
	return true
}
