package pprofconv

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/ingest/internal/pproftest"
)

// The benchmarks take one node's agent request: 3 processes × 300 stacks
// × depth 34 over 3000 functions (pproftest.Agent).

func BenchmarkInflate(b *testing.B) {
	body := pproftest.Encode(pproftest.Agent(pproftest.Config{}))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inflate(body, 64<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecompress inflates a bench/server-sized request (2
// processes: 215 KB of pprof) compressed as pprof writes it (gzip) and as
// the agent sends it (zstd, fastest level).
func BenchmarkDecompress(b *testing.B) {
	p := pproftest.Agent(pproftest.Config{Processes: 2})
	for _, enc := range []struct {
		name   string
		encode func(*profile.Profile) []byte
	}{{"gzip", pproftest.Encode}, {"zstd", pproftest.EncodeZstd}} {
		b.Run(enc.name, func(b *testing.B) {
			body := enc.encode(p)
			var bufs [maxLayers]bytes.Buffer
			raw, err := inflate(&bufs, body, 64<<20)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := inflate(&bufs, body, 64<<20); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(body)), "body-bytes")
		})
	}
}

func BenchmarkParse(b *testing.B) {
	raw := pproftest.EncodeUncompressed(pproftest.Agent(pproftest.Config{}))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConvert(b *testing.B) {
	p, err := Parse(pproftest.EncodeUncompressed(pproftest.Agent(pproftest.Config{})))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Convert(p, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScratch is the ingest path: inflate, decode, convert, release,
// for a node of 3 processes (88 KB gzipped, 296 KB raw) and one of 2
// (66 KB, 215 KB: about the server benchmark's average node), gzipped.
func BenchmarkScratch(b *testing.B) { benchScratch(b, pproftest.Encode) }

// BenchmarkScratchZstd is BenchmarkScratch as the agent sends: zstd.
func BenchmarkScratchZstd(b *testing.B) { benchScratch(b, pproftest.EncodeZstd) }

func benchScratch(b *testing.B, encode func(*profile.Profile) []byte) {
	for _, procs := range []int{3, 2} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			body := encode(pproftest.Agent(pproftest.Config{Processes: procs}))
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				s := NewScratch()
				if err := s.Decode(body, 64<<20); err != nil {
					b.Fatal(err)
				}
				if _, _, err := s.Convert(Options{}); err != nil {
					b.Fatal(err)
				}
				s.Release()
			}
			cpu.report(b)
		})
	}
}

// BenchmarkScratchDecode decodes the protobuf, uncompressed.
func BenchmarkScratchDecode(b *testing.B) {
	raw := pproftest.EncodeUncompressed(pproftest.Agent(pproftest.Config{}))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		s := NewScratch()
		if err := s.Decode(raw, 64<<20); err != nil {
			b.Fatal(err)
		}
		s.Release()
	}
	cpu.report(b)
}

// BenchmarkScratchConvert converts the decoded protobuf.
func BenchmarkScratchConvert(b *testing.B) {
	raw := pproftest.EncodeUncompressed(pproftest.Agent(pproftest.Config{}))
	b.ReportAllocs()
	s := NewScratch()
	b.StopTimer()
	var cpu time.Duration // while timed: Convert's
	for range b.N {
		if err := s.Decode(raw, 64<<20); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := processCPU()
		if _, _, err := s.Convert(Options{}); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU() - t0
		b.StopTimer()
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}
