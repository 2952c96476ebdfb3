package elfsym

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
)

// bigBinaries returns large real ELF files by name: the Go toolchain binary
// (a full .symtab) and libc (only .dynsym on most distributions).
func bigBinaries(b *testing.B) map[string]*File {
	paths := map[string]string{"libc": "/usr/lib/x86_64-linux-gnu/libc.so.6"}
	if gobin, err := exec.LookPath("go"); err == nil {
		paths["go"] = gobin
	}
	files := map[string]*File{}
	for name, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			if f, err := Open(data); err == nil {
				files[name] = f
			}
		}
	}
	if len(files) == 0 {
		b.Skip("no big binary")
	}
	return files
}

func BenchmarkSymbols(b *testing.B) {
	for name, f := range bigBinaries(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				s, err := f.Symbols()
				if err != nil {
					b.Fatal(err)
				}
				n = s.Len()
			}
			b.ReportMetric(float64(n), "symbols")
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	for name, f := range bigBinaries(b) {
		b.Run(name, func(b *testing.B) {
			syms, err := f.Symbols()
			if err != nil || syms.Len() == 0 {
				b.Fatal("no symbols", err)
			}
			pcs := make([]uint64, 4096)
			for i := range pcs {
				s := syms.syms[rand.IntN(len(syms.syms))]
				pcs[i] = s.addr + uint64(s.size)/2
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, _, ok := syms.Lookup(pcs[i%len(pcs)]); !ok {
					b.Fatalf("Lookup(%#x) failed", pcs[i%len(pcs)])
				}
				i++
			}
		})
	}
}
