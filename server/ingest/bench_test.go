package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/ingest"
	"github.com/flightrec/flightrec/server/ingest/internal/pproftest"
	"github.com/flightrec/flightrec/server/model"
	"github.com/flightrec/flightrec/server/store/duckdb"
)

// nopSink reads every frame during Append, as a store interning them
// would, and keeps nothing.
type nopSink struct{ n int }

func (s *nopSink) Append(_ context.Context, b *model.Batch) error {
	for _, p := range b.Profiles {
		for _, f := range p.Stacks.Frames {
			s.n += len(f.Function)
		}
	}
	return nil
}

// BenchmarkAgentEndpoint serves one node's request through the handler,
// without the network: the server's CPU per request, short of the store.
// A node runs 3 or 2 processes of 300 stacks of depth 34, over 3000
// functions (pproftest.Agent): 88 KB gzipped (296 KB raw) or 66 KB (215 KB).
func BenchmarkAgentEndpoint(b *testing.B) { benchAgentEndpoint(b, "gzip", pproftest.Encode) }

// BenchmarkAgentEndpointZstd is BenchmarkAgentEndpoint as the agent sends:
// zstd at the fastest level.
func BenchmarkAgentEndpointZstd(b *testing.B) {
	benchAgentEndpoint(b, "zstd", pproftest.EncodeZstd)
}

func benchAgentEndpoint(b *testing.B, enc string, encode func(*profile.Profile) []byte) {
	for _, procs := range []int{3, 2} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			body := encode(pproftest.Agent(pproftest.Config{Processes: procs}))
			h := &ingest.Handler{Sink: &nopSink{}}
			mux := http.NewServeMux()
			h.Register(mux)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, ingest.AgentPath, bytes.NewReader(body))
				req.Header.Set("Content-Encoding", enc)
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkIngestStore serves agent requests from 8 concurrent clients
// through the handler into the real DuckDB store: what the server spends
// per request short of the network. cpu-ms/req is the process's CPU
// (every thread, DuckDB's included) per request. Each request is one node
// (its own node label, so its own series) of 2 processes.
func BenchmarkIngestStore(b *testing.B) { benchIngestStore(b, "", pproftest.Encode) }

// BenchmarkIngestStoreZstd is BenchmarkIngestStore with bodies as the
// agent sends them: zstd, announced.
func BenchmarkIngestStoreZstd(b *testing.B) {
	benchIngestStore(b, "zstd", pproftest.EncodeZstd)
}

func benchIngestStore(b *testing.B, enc string, encode func(*profile.Profile) []byte) {
	st, err := duckdb.Open(b.TempDir(), duckdb.Options{MemoryLimit: "1GB"})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h := &ingest.Handler{Sink: st}
	mux := http.NewServeMux()
	h.Register(mux)
	body := encode(pproftest.Agent(pproftest.Config{Processes: 2}))
	post := func(node int) error {
		url := fmt.Sprintf("%s?labels=%%7Bnode%%3D%%22n%d%%22%%7D", ingest.PprofPath, node)
		req := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if enc != "" {
			req.Header.Set("Content-Encoding", enc)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			return fmt.Errorf("status %d: %s", w.Code, w.Body)
		}
		return nil
	}
	for n := range 100 { // warm the dictionaries
		if err := post(n); err != nil {
			b.Fatal(err)
		}
	}
	cpu0 := processCPU()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				if err := post(int(n % 1000)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/req")
	txns, batches := st.Commits()
	b.ReportMetric(float64(batches)/float64(txns), "req/commit")
}

// processCPU is the user and system time of the whole process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
