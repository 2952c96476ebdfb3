package gopclntab

import (
	"bytes"
	"encoding/binary"
)

// runtime.firstmoduledata is the only place that records, in a stripped
// binary, where text starts (Go 1.26 no longer writes it in the pclntab
// header, and with external linking it is not the start of .text) and where
// go:func.* starts, the base of the inline tree offsets. Its leading fields
// point at the pclntab, which is how it is found and validated.

// Word indexes of moduledata fields (pointers and slice headers are 8 bytes
// per word on 64-bit).
const (
	mdPcHeader    = 0
	mdFuncnametab = 1 // slice: ptr, len, cap
	mdCutab       = 4
	mdFiletab     = 7
	mdPctab       = 10
	mdPclntable   = 13
	mdFtab        = 16
	mdText        = 22
	mdGofunc118   = 38 // Go 1.18, 1.19
	mdGofunc120   = 40 // Go 1.20+ added covctrs, ecovctrs before it
)

// maxCandidates bounds the places tried: one is right in a real binary.
const maxCandidates = 16

type moduledata struct {
	text, gofunc uint64
}

// findModuledata returns the text and go:func.* addresses recorded in the
// moduledata whose header fields match the pclntab at tabAddr.
func findModuledata(e *elfFile, h *header, tabAddr uint64) (moduledata, bool) {
	if h.ver < ver118 {
		return moduledata{}, false // entries and funcdata are absolute then
	}
	var relocs [][]byte
	for _, addr := range moduledataCandidates(e, tabAddr) {
		if md, ok := readModuledata(e, h, tabAddr, addr, nil); ok {
			return md, true
		}
	}
	// Position-independent binaries may keep these pointers only as
	// relocation addends, leaving zeros in the file.
	relocs = e.relas()
	tries := 0
	for _, r := range relocs {
		for off := 0; off+relaSize <= len(r) && tries < maxCandidates; off += relaSize {
			if uint32(le.Uint64(r[off+8:])) != rX8664Rel || le.Uint64(r[off+16:]) != tabAddr {
				continue
			}
			tries++
			if md, ok := readModuledata(e, h, tabAddr, le.Uint64(r[off:]), relocs); ok {
				return md, true
			}
		}
	}
	return moduledata{}, false
}

// moduledataCandidates lists addresses in writable memory holding tabAddr:
// the .go.module section (Go 1.26+) first, then a scan of data segments.
func moduledataCandidates(e *elfFile, tabAddr uint64) []uint64 {
	var out []uint64
	if s := e.section(".go.module"); s != nil {
		out = append(out, s.addr)
	}
	var pat [8]byte
	binary.LittleEndian.PutUint64(pat[:], tabAddr)
	for _, s := range e.segs {
		if !s.writable {
			continue
		}
		seg := e.data[s.off : s.off+s.filesz]
		for i := 0; i < len(seg); {
			j := bytes.Index(seg[i:], pat[:])
			if j < 0 {
				break
			}
			if addr := s.vaddr + uint64(i+j); addr%8 == 0 {
				out = append(out, addr)
			}
			if len(out) >= maxCandidates {
				return out
			}
			i += j + 1
		}
	}
	return out
}

func readModuledata(e *elfFile, h *header, tabAddr, addr uint64, relocs [][]byte) (moduledata, bool) {
	word := func(i uint64) (uint64, bool) {
		if relocs == nil {
			b, ok := e.read(addr+8*i, 8)
			if !ok {
				return 0, false
			}
			return le.Uint64(b), true
		}
		return e.ptr(addr+8*i, relocs)
	}
	want := []struct {
		idx uint64
		val uint64
	}{
		{mdPcHeader, tabAddr},
		{mdFuncnametab, tabAddr + h.offsets[0]},
		{mdCutab, tabAddr + h.offsets[1]},
		{mdFiletab, tabAddr + h.offsets[2]},
		{mdPctab, tabAddr + h.offsets[3]},
		{mdPclntable, tabAddr + h.offsets[4]},
		{mdFtab, tabAddr + h.offsets[4]},
		{mdFtab + 1, h.nfunc + 1},
	}
	for _, w := range want {
		if v, ok := word(w.idx); !ok || v != w.val {
			return moduledata{}, false
		}
	}
	gofuncIdx := uint64(mdGofunc120)
	if h.ver == ver118 {
		gofuncIdx = mdGofunc118
	}
	text, ok1 := word(mdText)
	gofunc, ok2 := word(gofuncIdx)
	if !ok1 || !ok2 || text == 0 {
		return moduledata{}, false
	}
	return moduledata{text: text, gofunc: gofunc}, true
}
