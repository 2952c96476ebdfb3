package gopclntab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// exercise opens data and queries PCs around every function it can find;
// any panic or out-of-range read fails the caller.
func exercise(t testing.TB, data []byte) {
	tab, err := Open(data)
	if err != nil {
		if tab != nil {
			t.Fatalf("Open returned a table and error %v", err)
		}
		return
	}
	start, end := tab.TextRange()
	pcs := []uint64{0, start - 1, start, start + (end-start)/2, end - 1, end, ^uint64(0)}
	for i := 0; i < tab.NumFuncs() && i < 64; i++ {
		e, _ := tab.ft.entry(i)
		pcs = append(pcs, e, e+1, e+7, e+33)
	}
	var frames []Frame
	for _, pc := range pcs {
		frames = tab.Frames(pc, frames[:0])
		tab.SPDelta(pc)
		_, _, ok := tab.FuncEntry(pc)
		if ok != (len(frames) > 0) {
			t.Fatalf("pc %#x: FuncEntry ok=%v but %d frames", pc, ok, len(frames))
		}
	}
	tab.Format()
}

func FuzzOpen(f *testing.F) {
	for _, ver := range []version{ver116, ver118, ver120} {
		f.Add(buildSynth(synthSample(ver, false)))
	}
	f.Add(withoutSections(buildSynth(synthSample(ver120, true))))
	f.Fuzz(func(t *testing.T, data []byte) {
		exercise(t, data)
	})
}

// TestCorruptRealTable flips bytes in, and truncates, the test binary's own
// pclntab and moduledata: a real table reaches code paths that random
// bytes do not.
func TestCorruptRealTable(t *testing.T) {
	data, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Skip(err)
	}
	e, err := parseELF(data)
	if err != nil {
		t.Fatal(err)
	}
	tab, tabAddr, err := locatePclntab(e)
	if err != nil {
		t.Fatal(err)
	}
	tabOff := uint64(len(data) - len(tab))
	for _, s := range e.segs {
		if tabAddr >= s.vaddr && tabAddr-s.vaddr < s.filesz {
			tabOff = s.off + tabAddr - s.vaddr
		}
	}
	rng := rand.New(rand.NewSource(1))
	// Most corruption goes to the header, function table and first
	// functions, where a bad value changes what is read next.
	hot := min(uint64(len(tab)), 1<<20)
	for i := 0; i < 300; i++ {
		var at uint64
		switch i % 3 {
		case 0:
			at = tabOff + uint64(rng.Intn(128))
		case 1:
			at = tabOff + uint64(rng.Int63n(int64(hot)))
		default:
			at = uint64(rng.Int63n(int64(len(data))))
		}
		old := data[at]
		data[at] = byte(rng.Intn(256))
		exercise(t, data)
		exercise(t, data[:tabOff+uint64(rng.Int63n(int64(len(tab))))])
		data[at] = old
	}
	exercise(t, withoutSections(data[:tabOff+uint64(len(tab))/2]))
}

func TestOpenErrors(t *testing.T) {
	synth := buildSynth(synthSample(ver120, false))
	old := buildSynth(synthSample(ver120, false))
	binary.LittleEndian.PutUint32(old[synthPclnOff:], magic12)
	tests := []struct {
		name string
		data []byte
		want error // nil: any error
	}{
		{"empty", nil, ErrNotGo},
		{"text", []byte("#!/bin/sh\necho hello\n"), ErrNotGo},
		{"elf-header-only", synth[:ehdrSize], nil},
		{"go1.2-1.15", old, ErrUnsupported},
		{"truncated-pclntab", synth[:synthPclnOff+100], nil},
		{"32-bit", append([]byte("\x7fELF\x01\x01"), make([]byte, 64)...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.data)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
		})
	}
}

// elfWithPclntab wraps raw pclntab bytes in a minimal ELF file.
func elfWithPclntab(tab []byte) []byte {
	spec := synthSpec{ver: ver120, text: 0x1000000}
	return wrapELF(spec, append(append([]byte(nil), tab...), make([]byte, 8)...))
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzOpen from the binaries
// listed in GOPCLNTAB_WRITE_CORPUS (plus the test binary): their pclntab
// headers, truncated, and mutated so that the function table lies inside
// the truncated bytes.
func TestWriteFuzzCorpus(t *testing.T) {
	list := os.Getenv("GOPCLNTAB_WRITE_CORPUS")
	if list == "" {
		t.Skip("set GOPCLNTAB_WRITE_CORPUS to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, ver := range []version{ver116, ver118, ver120} {
		write(fmt.Sprintf("synth-v%d", ver), buildSynth(synthSample(ver, ver != ver116)))
	}
	for i, path := range append(filepath.SplitList(list), "/proc/self/exe") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		e, err := parseELF(data)
		if err != nil {
			t.Fatal(err)
		}
		tab, _, err := locatePclntab(e)
		if err != nil {
			t.Fatal(err)
		}
		trunc := append([]byte(nil), tab[:4096]...)
		write(fmt.Sprintf("real-%d-truncated", i), elfWithPclntab(trunc))
		// Point every table at offsets inside the truncated copy and
		// claim few functions, so that decoding goes past the header.
		words := 7
		if binary.LittleEndian.Uint32(trunc) != magic116 {
			words = 8
		}
		binary.LittleEndian.PutUint64(trunc[8:], 3)
		for k, off := range []uint64{80, 1024, 1536, 2048, 3072} {
			binary.LittleEndian.PutUint64(trunc[8+8*(words-5+k):], off)
		}
		write(fmt.Sprintf("real-%d-mutated", i), elfWithPclntab(trunc))
	}
}
