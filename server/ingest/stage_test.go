package ingest_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flightrec/flightrec/server/ingest"
	"github.com/flightrec/flightrec/server/model"
)

// stagingSink is an ingest.Stager whose commits complete only when the
// test says: a Stage copies the batch and returns at once, its wait
// blocks on commit.
type stagingSink struct {
	memSink
	staged chan struct{} // one value per Stage
	commit chan error    // one value per wait
	block  chan struct{} // if not nil, Stage waits for it to close
}

func newStagingSink() *stagingSink {
	return &stagingSink{staged: make(chan struct{}, 16), commit: make(chan error, 16)}
}

func (s *stagingSink) Stage(ctx context.Context, b *model.Batch) (func() error, error) {
	if s.block != nil {
		<-s.block
	}
	if err := s.memSink.Append(ctx, b); err != nil {
		return nil, err
	}
	s.staged <- struct{}{}
	return func() error { return <-s.commit }, nil
}

// TestStageFreesDecoding: with one decoding slot, a request waiting for
// its commit does not hold the slot, so the next request is decoded and
// staged meanwhile; each is answered once its own commit is done, with
// the commit's outcome.
func TestStageFreesDecoding(t *testing.T) {
	sink := newStagingSink()
	s := newServer(t, func(h *ingest.Handler) { h.Sink, h.MaxDecoding = sink, 1 })
	replies := make(chan reply, 2)
	send := func() {
		replies <- s.post(t, ingest.AgentPath, bytes.NewReader(encode(t, agentPprof(100, "1"), true)))
	}
	go send()
	waitStaged(t, sink, "first")
	go send()
	waitStaged(t, sink, "second, while the first waits for its commit,")
	select {
	case r := <-replies:
		t.Fatalf("answered before any commit: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	sink.commit <- nil
	if r := <-replies; r.status != http.StatusOK || r.Profiles != 1 {
		t.Errorf("committed: reply = %+v, want 200 with 1 profile", r)
	}
	sink.commit <- errStoreDown
	if r := <-replies; r.status != http.StatusServiceUnavailable || !strings.Contains(r.Error, "disk full") {
		t.Errorf("failed commit: reply = %+v, want 503 naming the store's error", r)
	}
	if got := s.counter(t, "flightrec_ingest_profiles_total", "agent"); got != 1 {
		t.Errorf("profiles_total{agent} = %v, want 1: a failed commit counts no profiles", got)
	}
}

func waitStaged(t *testing.T, sink *stagingSink, which string) {
	t.Helper()
	select {
	case <-sink.staged:
	case <-time.After(10 * time.Second):
		t.Fatalf("the %s request was never staged", which)
	}
}

// TestDecodingBusy: a request whose client has given up while every
// decoding slot is taken gets 503 and is counted as busy, unread.
func TestDecodingBusy(t *testing.T) {
	sink := newStagingSink()
	sink.block = make(chan struct{})
	var unblock sync.Once
	defer unblock.Do(func() { close(sink.block) })
	s := newServer(t, func(h *ingest.Handler) { h.Sink, h.MaxDecoding = sink, 1 })
	first := make(chan reply, 1)
	go func() { first <- s.post(t, ingest.AgentPath, bytes.NewReader(encode(t, agentPprof(100, "1"), true))) }()
	// The first request holds the slot inside Stage; wait until it does.
	deadline := time.Now().Add(10 * time.Second)
	for s.counter(t, "flightrec_ingest_bytes_total", "agent") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first request was never read")
		}
		time.Sleep(time.Millisecond)
	}
	// Served in process: a server notices a client gone only once it reads
	// the body, which a request waiting for a slot does not.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, ingest.AgentPath, bytes.NewReader(encode(t, agentPprof(100, "2"), true)))
	rec := httptest.NewRecorder()
	s.Config.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "busy") {
		t.Errorf("second request: %d %s, want 503 saying the server is busy", rec.Code, rec.Body)
	}
	if got := s.counter(t, "flightrec_ingest_rejected_total", "agent", "busy"); got != 1 {
		t.Errorf("rejected_total{agent,busy} = %v, want 1", got)
	}
	unblock.Do(func() { close(sink.block) })
	sink.commit <- nil
	if r := <-first; r.status != http.StatusOK {
		t.Errorf("first request: reply = %+v, want 200", r)
	}
	if got := len(sink.take()); got != 1 {
		t.Errorf("%d batches stored, want 1", got)
	}
}
