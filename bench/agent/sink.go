package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/zstd"
)

// sink is the receiving end of the agent's wire protocol (docs/wire.md): it
// accepts every POST to /api/v1/ingest/agent with 200 and counts what came,
// and holds the flight recorder's trigger poll as a server with no triggers
// does.
type sink struct {
	srv *http.Server
	url string
	zd  *zstd.Decoder // the agent sends zstd; DecodeAll is safe concurrently

	mu    sync.Mutex
	stats sinkStats
	keys  map[string]bool // Idempotency-Keys seen since the last reset
}

type sinkStats struct {
	Profiles   int   // distinct profiles (by Idempotency-Key) answered 200
	Duplicates int   // requests repeating a key already received (retries)
	Bytes      int64 // request bodies, as sent (zstd), duplicates included
	Samples    int64 // sum of samples/count over the distinct profiles
	Bad        int   // bodies that did not decode as pprof, or without a key
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	zd, err := zstd.NewReader(nil)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String(), zd: zd, keys: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/ingest/agent", s.ingest)
	mux.HandleFunc("GET /api/v1/agent/triggers", holdPoll)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("sink: %v", err)
		}
	}()
	return s, nil
}

func (s *sink) ingest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Count before answering: once the agent has its 200 it may exit, and
	// the bench then reads the counters (and resets them for the next run).
	defer w.WriteHeader(http.StatusOK)

	key := r.Header.Get("Idempotency-Key")
	bad := key == ""
	var samples int64
	sent := len(body)
	if raw, err := s.zd.DecodeAll(body, nil); err == nil {
		body = raw
	} // else: gzip or plain, which profile.Parse reads
	if p, err := profile.Parse(bytes.NewReader(body)); err != nil {
		bad = true
	} else {
		samples = countSamples(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Bytes += int64(sent)
	if bad {
		s.stats.Bad++
	}
	if key != "" && s.keys[key] {
		// The agent ships at least once; the server dedupes by key.
		s.stats.Duplicates++
		return
	}
	if key != "" {
		s.keys[key] = true
	}
	s.stats.Profiles++
	s.stats.Samples += samples
}

// reset zeroes the counters between runs.
func (s *sink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = sinkStats{}
	s.keys = map[string]bool{}
}

func (s *sink) snapshot() sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *sink) close() { _ = s.srv.Close() }

// holdPoll answers the agent's trigger long poll as flightrec server does
// when nothing fires: it holds the request for the wait the agent asks
// (at most a minute) and answers 204. A 404 instead would have the agent
// retry with backoff, a dozen requests a minute a real node never makes.
func holdPoll(w http.ResponseWriter, r *http.Request) {
	wait, err := time.ParseDuration(r.URL.Query().Get("wait"))
	if err != nil || wait <= 0 || wait > time.Minute {
		wait = 30 * time.Second
	}
	select {
	case <-r.Context().Done():
	case <-time.After(wait):
	}
	w.WriteHeader(http.StatusNoContent)
}

// countSamples sums the profile's samples/count values: the agent's
// profiles also carry off-CPU and CPU nanoseconds, which are not samples.
func countSamples(p *profile.Profile) int64 {
	i := slices.IndexFunc(p.SampleType, func(t *profile.ValueType) bool {
		return t.Type == "samples" && t.Unit == "count"
	})
	if i < 0 {
		return 0
	}
	var n int64
	for _, smp := range p.Sample {
		if i < len(smp.Value) {
			n += smp.Value[i]
		}
	}
	return n
}
