package ship

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type recorder struct {
	mu       sync.Mutex
	failLeft int
	status   int
	bodies   []string
	keys     []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	body, _ := io.ReadAll(req.Body)
	r.keys = append(r.keys, req.Header.Get("Idempotency-Key"))
	if req.URL.Path != Path || req.Header.Get("Authorization") != "Bearer t0k" {
		http.Error(w, "bad path or token", http.StatusUnauthorized)
		return
	}
	if r.failLeft > 0 {
		r.failLeft--
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	if r.status != 0 {
		http.Error(w, "malformed profile", r.status)
		return
	}
	r.bodies = append(r.bodies, string(body))
}

func (r *recorder) snapshot() ([]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies), slices.Clone(r.keys)
}

func newShipper(t *testing.T, url string, spool int) (*Shipper, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	s, err := New(Config{Server: url, Token: "t0k", AgentID: "a1", SpoolBytes: spool, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetriesInOrderWithSameKey(t *testing.T) {
	rec := &recorder{failLeft: 3}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s, reg := newShipper(t, srv.URL, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, time.Second); close(done) }()
	s.Enqueue([]byte("p1"))
	s.Enqueue([]byte("p2"))
	waitFor(t, "two profiles delivered", func() bool { b, _ := rec.snapshot(); return len(b) == 2 })
	cancel()
	<-done

	bodies, keys := rec.snapshot()
	if !slices.Equal(bodies, []string{"p1", "p2"}) {
		t.Errorf("delivered %q, want p1 then p2", bodies)
	}
	// Three failures then success all carry p1's key; p2 has its own.
	if want := []string{"a1-1", "a1-1", "a1-1", "a1-1", "a1-2"}; !slices.Equal(keys, want) {
		t.Errorf("idempotency keys %q, want %q", keys, want)
	}
	if got := testutil.ToFloat64(s.m.failures.WithLabelValues("status")); got != 3 {
		t.Errorf("failures = %v, want 3", got)
	}
	if n, _ := testutil.GatherAndCount(reg, "flightrec_agent_shipped_profiles_total"); n != 1 {
		t.Errorf("shipped metric not registered")
	}
}

// TestServerAwaySpoolBounded ships to a port nobody listens on: the spool
// keeps the newest profiles within its bound and counts the drops.
func TestServerAwaySpoolBounded(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	s, _ := newShipper(t, url, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, 50*time.Millisecond); close(done) }()
	for i := 0; i < 50; i++ {
		s.Enqueue([]byte("0123456789")) // 10 bytes each: 10 fit
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "network failures", func() bool { return testutil.ToFloat64(s.m.failures.WithLabelValues("network")) >= 2 })
	cancel()
	<-done
	if s.Len() != 10 {
		t.Errorf("spool holds %d profiles, want the newest 10", s.Len())
	}
	if got := testutil.ToFloat64(s.m.dropped); got != 40 {
		t.Errorf("dropped = %v, want 40", got)
	}
	if got := testutil.ToFloat64(s.m.spoolBytes); got != 100 {
		t.Errorf("spool bytes gauge = %v, want 100", got)
	}
	s.mu.Lock()
	first := s.queue[0].seq
	s.mu.Unlock()
	if first != 41 {
		t.Errorf("oldest kept profile is #%d, want #41", first)
	}
}

func TestRejectedIsDroppedNotRetried(t *testing.T) {
	rec := &recorder{status: http.StatusBadRequest}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s, _ := newShipper(t, srv.URL, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, time.Second); close(done) }()
	s.Enqueue([]byte("bad"))
	waitFor(t, "rejection", func() bool { return testutil.ToFloat64(s.m.rejected) == 1 })
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if _, keys := rec.snapshot(); len(keys) != 1 {
		t.Errorf("rejected profile sent %d times, want once", len(keys))
	}
	if s.Len() != 0 {
		t.Errorf("rejected profile still queued")
	}
}

// TestFlushOnShutdown: profiles queued when the context ends are still sent.
func TestFlushOnShutdown(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	s, _ := newShipper(t, srv.URL, 1<<20)
	s.Enqueue([]byte("last"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Run(ctx, time.Second)
	if b, _ := rec.snapshot(); !slices.Equal(b, []string{"last"}) {
		t.Errorf("delivered %q on shutdown, want the queued profile", b)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	if _, err := New(Config{Server: "flightrec:7070"}, slog.New(slog.DiscardHandler), nil); err == nil {
		t.Error("accepted a server URL without scheme")
	}
}
