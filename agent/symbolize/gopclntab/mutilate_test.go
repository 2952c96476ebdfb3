package gopclntab

import (
	"encoding/binary"
	"testing"
)

// withoutSections returns a copy of an ELF file with its section headers
// removed, as sstrip-like tools do: the pclntab, moduledata and dynamic
// relocations must then be found through program headers alone.
func withoutSections(data []byte) []byte {
	out := append([]byte(nil), data...)
	binary.LittleEndian.PutUint64(out[40:], 0) // e_shoff
	binary.LittleEndian.PutUint16(out[60:], 0) // e_shnum
	binary.LittleEndian.PutUint16(out[62:], 0) // e_shstrndx
	return out
}

// withoutModuledataPointers zeroes the relocated words of the moduledata
// in a position-independent binary, leaving those pointers only in its
// relocations, as a linker is free to do.
func withoutModuledataPointers(t *testing.T, data []byte) []byte {
	t.Helper()
	e, err := parseELF(data)
	if err != nil {
		t.Fatal(err)
	}
	_, tabAddr, err := locatePclntab(e)
	if err != nil {
		t.Fatal(err)
	}
	cands := moduledataCandidates(e, tabAddr)
	if len(cands) == 0 {
		t.Fatal("no moduledata found")
	}
	md := cands[0]
	out := append([]byte(nil), data...)
	zeroed := 0
	for _, r := range e.relas() {
		for off := 0; off+relaSize <= len(r); off += relaSize {
			addr := binary.LittleEndian.Uint64(r[off:])
			if addr < md || addr >= md+8*(mdGofunc120+1) {
				continue
			}
			for _, s := range e.segs {
				if addr >= s.vaddr && addr-s.vaddr < s.filesz {
					clear(out[s.off+addr-s.vaddr:][:8])
					zeroed++
				}
			}
		}
	}
	if zeroed < 10 {
		t.Fatalf("only %d moduledata words are relocated", zeroed)
	}
	return out
}

// testMutilated checks that binaries with their section headers or
// moduledata pointers removed still symbolize like the originals.
func testMutilated(t *testing.T, bins map[string]string) {
	cases := []struct {
		name, from string
		mutate     func(*testing.T, []byte) []byte
	}{
		{"no-sections", "stripped", func(_ *testing.T, b []byte) []byte { return withoutSections(b) }},
		{"pie-no-sections", "pie-stripped", func(_ *testing.T, b []byte) []byte { return withoutSections(b) }},
		{"pie-moduledata-in-relocs", "pie-stripped", withoutModuledataPointers},
		{"pie-moduledata-in-relocs-no-sections", "pie-stripped", func(t *testing.T, b []byte) []byte {
			return withoutSections(withoutModuledataPointers(t, b))
		}},
	}
	for _, c := range cases {
		if bins[c.from] == "" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			orig, data := openFile(t, bins[c.from])
			mut, err := Open(c.mutate(t, data))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if mut.gofunc != orig.gofunc || mut.ft.textStart != orig.ft.textStart {
				t.Errorf("gofunc %#x, text %#x; want %#x, %#x", mut.gofunc, mut.ft.textStart, orig.gofunc, orig.ft.textStart)
			}
			compareTables(t, mut, orig)
		})
	}
}
