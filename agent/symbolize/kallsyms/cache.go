package kallsyms

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cacheMagic starts a cache file; the digit is the format version. Version
// 2 aligns the arrays, so that a mapped cache is used in place.
const cacheMagic = "flightrec-kallsyms-2\n"

// cacheFile is the cache's name in its directory. It carries the format
// version, so that agents of two versions on one node (a rolling upgrade,
// an A/B benchmark) do not overwrite each other's cache on every start.
const cacheFile = "kallsyms.v2.cache"

// LoadCached returns the running kernel's symbols, from dir when a cache
// there was written during this boot with the same modules loaded, else
// from /proc/kallsyms (and then refreshes the cache). The kernel spends
// ~30 ms of CPU generating /proc/kallsyms on every read; an agent restarted
// on a node (an upgrade, a crash) skips that. Any cache problem falls back
// to the real file: the cache can only save time, never change an answer.
func LoadCached(dir string) (*Table, error) {
	key, keyErr := cacheKey()
	path := filepath.Join(dir, cacheFile)
	if keyErr == nil && dir != "" {
		if t, err := mapCache(path, key); err == nil {
			return t, nil
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

// mapCache maps the cache file and uses its arrays in place: copying ~5 MB
// onto the heap cost more CPU than the few lookups a node makes, and kept
// the heap (and the collector's work) larger for the agent's whole life.
// The mapping goes when the table does; nothing else refers to it (Lookup
// returns copies). writeCache replaces the file by rename, never in place,
// so a mapped file does not change under a reader.
func mapCache(path string, key []byte) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat kallsyms cache: %w", err)
	}
	if st.Size() <= int64(len(cacheMagic)) || !st.Mode().IsRegular() {
		return nil, errBadCache
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("map kallsyms cache: %w", err)
	}
	t, err := decodeCache(data, key)
	if err != nil {
		_ = unix.Munmap(data)
		return nil, err
	}
	// The check read every address and name reference; the page cache
	// keeps them, and a lookup faults in only the pages it reads.
	_ = unix.Madvise(data, unix.MADV_DONTNEED)
	runtime.AddCleanup(t, func(b []byte) { _ = unix.Munmap(b) }, data)
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

// encodeCache lays the table out as: magic, key, counts, zeros up to a
// multiple of 8 bytes, then the arrays (addresses, names, modules: each
// aligned for its element size), the name blocks and the module names,
// little-endian.
func encodeCache(key []byte, t *Table) []byte {
	var b bytes.Buffer
	b.WriteString(cacheMagic)
	putBytes(&b, key)
	le := binary.LittleEndian
	for _, n := range []int{t.n, len(t.addrs), len(t.mods), len(t.blob), len(t.modules)} {
		b.Write(le.AppendUint64(nil, uint64(n)))
	}
	b.Write(make([]byte, padTo8(b.Len())))
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

// padTo8 is how many bytes take offset n to a multiple of 8.
func padTo8(n int) int { return -n & 7 }

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

// decodeCache reads encodeCache's layout from b, failing on any
// inconsistency. The table refers to b: its arrays are b's bytes when they
// are aligned (as in a mapped file) and the host is little-endian, and its
// name blocks always are.
func decodeCache(b, key []byte) (*Table, error) {
	if !bytes.HasPrefix(b, []byte(cacheMagic)) {
		return nil, errBadCache
	}
	r := &cacheReader{b: b[len(cacheMagic):]}
	if !bytes.Equal(r.bytes(), key) {
		return nil, fmt.Errorf("kallsyms cache is from another boot or module set")
	}
	n, nAddrs, nMods, nBlob, nModules := r.u64(), r.u64(), r.u64(), r.u64(), r.u64()
	r.take(uint64(padTo8(len(b) - len(r.b))))
	if r.err != nil || nAddrs > uint64(len(r.b))/12 || (nMods != 0 && nMods != nAddrs) || nBlob > 1<<16 || nModules > 1<<16 {
		return nil, errBadCache
	}
	t := &Table{n: int(n)}
	le := binary.LittleEndian
	t.addrs = view(r.take(8*nAddrs), le.Uint64)
	t.names = view(r.take(4*nAddrs), le.Uint32)
	if nMods > 0 {
		t.mods = view(r.take(2*nMods), le.Uint16)
	}
	for i := uint64(0); i < nBlob && r.err == nil; i++ {
		t.blob = append(t.blob, r.bytes())
	}
	for i := uint64(0); i < nModules && r.err == nil; i++ {
		t.modules = append(t.modules, string(r.bytes()))
	}
	if r.err != nil || len(r.b) != 0 || uint64(len(t.addrs)) != nAddrs || !t.consistent() {
		return nil, errBadCache
	}
	return t, nil
}

// littleEndian reports whether this host stores integers as the cache does.
func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// view returns p as little-endian Ts: in place when p is aligned for T and
// the host is little-endian, else decoded into a copy with get.
func view[T uint16 | uint32 | uint64](p []byte, get func([]byte) T) []T {
	size := int(unsafe.Sizeof(T(0)))
	n := len(p) / size
	if n == 0 {
		return []T{}
	}
	if littleEndian() && uintptr(unsafe.Pointer(&p[0]))%uintptr(size) == 0 {
		return unsafe.Slice((*T)(unsafe.Pointer(&p[0])), n)
	}
	out := make([]T, n)
	for i := range out {
		out[i] = get(p[size*i:])
	}
	return out
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
