package kallsyms

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// entry is a symbol while parsing; kind orders aliases (lower is better).
type entry struct {
	addr uint64
	name uint32
	mod  uint16
	kind uint8
}

const (
	kindGlobal = iota // T, W
	kindLocal         // t, w
	kindEnd           // data or an end-of-text marker
)

// The input's size is unknown (/proc files report 0), so entries and names
// are collected in fixed chunks rather than grown slices: nothing is copied
// while parsing, and names never move at all. A name reference is the blob
// chunk's index in the high 16 bits and the offset in the low 16.
const (
	entryChunk = 8192
	blobChunk  = 64 << 10
	maxChunks  = math.MaxUint16 // so that noName is never a real reference
)

type parser struct {
	chunks  [][]entry
	blob    [][]byte
	modules []string
	modIdx  map[string]uint16
	lastMod string // module of the previous line, to skip the map lookup
	lastIdx uint16
	zeros   int // text symbols at address 0
	texts   int
}

func newParser() *parser {
	return &parser{modules: []string{""}, modIdx: map[string]uint16{}}
}

var errFormat = errors.New(`want "<hex address> <type> <name>[\t[<module>]]"`)

// add parses one line: "ffffffff81000000 T _stext" or
// "ffffffffc0a01000 t foo\t[nf_tables]".
func (p *parser) add(line []byte) error {
	line = bytes.TrimRight(line, "\r\n")
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || len(line) < sp+4 || line[sp+2] != ' ' {
		return errFormat
	}
	addr, ok := parseHex(line[:sp])
	if !ok {
		return fmt.Errorf("bad address %q", line[:sp])
	}
	name, mod, ok := splitModule(line[sp+3:])
	if !ok {
		return errFormat
	}
	kind, keep := kindOf(line[sp+1], name)
	if !keep {
		return nil
	}
	if kind != kindEnd {
		p.texts++
	}
	if addr == 0 {
		// Hidden by kptr_restrict, or not an address at all.
		if kind != kindEnd {
			p.zeros++
		}
		return nil
	}
	return p.push(addr, kind, name, mod)
}

func (p *parser) push(addr uint64, kind uint8, name, mod []byte) error {
	e := entry{addr: addr, name: noName, kind: kind}
	if kind != kindEnd {
		ref, err := p.addName(name)
		if err != nil {
			return err
		}
		e.name = ref
	}
	if len(mod) > 0 {
		idx, err := p.module(mod)
		if err != nil {
			return err
		}
		e.mod = idx
	}
	if n := len(p.chunks); n == 0 || len(p.chunks[n-1]) == entryChunk {
		p.chunks = append(p.chunks, make([]entry, 0, entryChunk))
	}
	last := &p.chunks[len(p.chunks)-1]
	*last = append(*last, e)
	return nil
}

func (p *parser) addName(name []byte) (uint32, error) {
	if len(name) >= blobChunk {
		return 0, fmt.Errorf("name of %d bytes", len(name))
	}
	n := len(p.blob)
	if n == 0 || cap(p.blob[n-1])-len(p.blob[n-1]) <= len(name) {
		if n == maxChunks {
			return 0, errors.New("too many names")
		}
		p.blob = append(p.blob, make([]byte, 0, blobChunk))
		n++
	}
	c := &p.blob[n-1]
	ref := uint32(n-1)<<16 | uint32(len(*c))
	*c = append(append(*c, name...), 0)
	return ref, nil
}

func (p *parser) module(mod []byte) (uint16, error) {
	if string(mod) == p.lastMod {
		return p.lastIdx, nil
	}
	idx, ok := p.modIdx[string(mod)]
	if !ok {
		if len(p.modules) > math.MaxUint16 {
			return 0, errors.New("more than 65535 modules")
		}
		idx = uint16(len(p.modules))
		p.modules = append(p.modules, string(mod))
		p.modIdx[string(mod)] = idx
	}
	p.lastMod, p.lastIdx = p.modules[idx], idx
	return idx, nil
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// splitModule splits "name\t[module]" (or plain "name").
func splitModule(b []byte) (name, mod []byte, ok bool) {
	name, rest, found := bytes.Cut(b, []byte{'\t'})
	if len(name) == 0 || bytes.IndexByte(name, 0) >= 0 {
		return nil, nil, false
	}
	if !found {
		return name, nil, true
	}
	rest = bytes.TrimSpace(rest)
	if len(rest) < 3 || rest[0] != '[' || rest[len(rest)-1] != ']' {
		return nil, nil, false
	}
	return name, rest[1 : len(rest)-1], true
}

// kindOf classifies a symbol type. Text is kept; data and the end markers
// of kernel text are kept as boundaries so text lookups stop there; the
// rest (absolute values, such as CFI type hashes) carries no address.
func kindOf(typ byte, name []byte) (uint8, bool) {
	switch typ {
	case 'T', 'W':
		if string(name) == "_etext" || string(name) == "_einittext" {
			return kindEnd, true
		}
		return kindGlobal, true
	case 't', 'w':
		return kindLocal, true
	case 'd', 'D', 'b', 'B', 'r', 'R', 'v', 'V', 'g', 'G', 's', 'S':
		return kindEnd, true
	}
	return 0, false
}

// table merges the chunks into the final index.
func (p *parser) table() (*Table, error) {
	if p.texts == 0 {
		return nil, errors.New("no text symbols")
	}
	if p.zeros == p.texts {
		return nil, ErrRestricted
	}
	n := 0
	for _, c := range p.chunks {
		byAddr := func(a, b entry) int { return cmp.Compare(a.addr, b.addr) }
		if !slices.IsSortedFunc(c, byAddr) {
			// Stable, so that among aliases the first listed wins ties.
			slices.SortStableFunc(c, byAddr)
		}
		n += len(c)
	}
	t := &Table{addrs: make([]uint64, 0, n), names: make([]uint32, 0, n), blob: p.blob, modules: p.modules}
	if len(p.modules) > 1 {
		t.mods = make([]uint16, 0, n)
	}
	if last := len(t.blob) - 1; last >= 0 && cap(t.blob[last])-len(t.blob[last]) > blobChunk/8 {
		t.blob[last] = slices.Clone(t.blob[last])
	}
	s := sink{t: t}
	merge(p.chunks, s.add)
	s.trim()
	return t, nil
}
