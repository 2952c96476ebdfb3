package elfsym

import "testing"

// FuzzOpen checks that no input makes Open, Symbols, Lookup, Code or the
// identity readers panic. Seeds: testdata/fuzz/FuzzOpen (small real files,
// whole and truncated) and a synthetic file with every kind of symbol.
func FuzzOpen(f *testing.F) {
	f.Add(buildELF(synthSyms))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Open(data)
		if err != nil {
			return
		}
		_, _ = file.BuildID(), file.GoBuildID()
		_, _, _ = file.DebugLink()
		_, _ = file.IsGo(), file.HasSymtab()
		_, _, _ = file.Section(".gopclntab")
		for _, s := range file.Loads() {
			_, _ = file.FileOffsetToVaddr(s.Off + s.Filesz/2)
			_ = file.Code(s.Vaddr, 32)
			_ = file.Code(s.Vaddr+s.Filesz-1, 32)
		}
		syms, err := file.Symbols()
		if err != nil {
			return
		}
		for _, s := range syms.syms {
			for _, pc := range []uint64{s.addr - 1, s.addr, s.addr + uint64(s.size)/2, s.addr + uint64(s.size)} {
				if name, start, ok := syms.Lookup(pc); ok && (start > pc || name == "") {
					t.Fatalf("Lookup(%#x) = %q, %#x: empty name or start above pc", pc, name, start)
				}
			}
			_ = file.Code(s.addr, 16)
		}
	})
}
