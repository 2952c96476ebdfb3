// Package kallsyms indexes kernel symbols from /proc/kallsyms so kernel
// frames of sampled stacks can be named, with their module if any.
package kallsyms

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// ErrRestricted reports a /proc/kallsyms whose addresses all read as zero.
var ErrRestricted = errors.New("kallsyms: all addresses are 0: kernel.kptr_restrict hides them " +
	"from this process; run with CAP_SYSLOG and kernel.kptr_restrict<=1 " +
	"(sysctl -w kernel.kptr_restrict=1), or set kernel.kptr_restrict=0 with kernel.perf_event_paranoid<=1")

// Path is where Load reads the kernel's symbols.
const Path = "/proc/kallsyms"

// noName marks an entry that ends the text before it (data, _etext): an
// address there is not in any known function.
const noName = math.MaxUint32

// Table maps kernel text addresses to symbols. It holds 14 bytes per symbol
// plus the names, NUL-terminated in 64 KiB blocks. It is immutable, so safe
// for concurrent use.
type Table struct {
	addrs   []uint64 // sorted, distinct
	names   []uint32 // block<<16 | offset into blob, or noName
	mods    []uint16 // index into modules, 0 for the kernel itself; nil without modules
	blob    [][]byte
	modules []string
	n       int // symbols, not counting boundaries
}

// Load reads and indexes /proc/kallsyms.
func Load() (*Table, error) {
	f, err := os.Open(Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", Path, err)
	}
	return t, nil
}

// Parse indexes text symbols (types t, T, w, W, including those of modules)
// from kallsyms-formatted r. Lines are scanned in place in the reader's
// buffer: no line costs an allocation of its own.
func Parse(r io.Reader) (*Table, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	p := newParser()
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("line %d: longer than %d bytes", lineNo, br.Size())
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if perr := p.add(line); perr != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, perr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("after line %d: %w", lineNo, err)
		}
	}
	return p.table()
}

// Len reports how many symbols the table holds.
func (t *Table) Len() int { return t.n }

// Lookup returns the symbol containing addr, the one with the largest start
// at or below it, and its module ("" for the kernel image). ok is false below
// the first symbol and past the end of text (_etext, or data that follows).
func (t *Table) Lookup(addr uint64) (name, module string, ok bool) {
	i := upperBound(t.addrs, addr) - 1
	if i < 0 || t.names[i] == noName {
		return "", "", false
	}
	if t.mods != nil {
		module = t.modules[t.mods[i]]
	}
	return string(t.name(t.names[i])), module, true
}

// upperBound returns the index of the first address above addr.
func upperBound(addrs []uint64, addr uint64) int {
	lo, hi := 0, len(addrs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if addrs[m] <= addr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (t *Table) name(ref uint32) []byte {
	b := t.blob[ref>>16][ref&0xffff:]
	if end := bytes.IndexByte(b, 0); end >= 0 {
		b = b[:end]
	}
	return b
}
