package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flightrec/flightrec/server/ingest"
	"github.com/flightrec/flightrec/server/ingest/internal/pproftest"
	"github.com/flightrec/flightrec/server/model"
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
func BenchmarkAgentEndpoint(b *testing.B) {
	for _, procs := range []int{3, 2} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			body := pproftest.Encode(pproftest.Agent(pproftest.Config{Processes: procs}))
			h := &ingest.Handler{Sink: &nopSink{}}
			mux := http.NewServeMux()
			h.Register(mux)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, ingest.AgentPath, bytes.NewReader(body))
				req.Header.Set("Content-Encoding", "gzip")
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
