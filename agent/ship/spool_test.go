package ship

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flightrec/flightrec/wire/snapshot"
)

// snapServer is a snapshot endpoint that fails the first failLeft requests
// with failStatus and answers every later one with status (0: 200).
type snapServer struct {
	mu         sync.Mutex
	failLeft   int
	failStatus int
	status     int
	requests   int
	bodies     [][]byte
	ids        []string // of the acknowledged snapshots
}

func (s *snapServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	body, _ := io.ReadAll(r.Body)
	s.bodies = append(s.bodies, body)
	if r.URL.Path != SnapshotsPath || r.Header.Get("Authorization") != "Bearer t0k" ||
		r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Content-Encoding") != "gzip" {
		http.Error(w, "bad path or headers", http.StatusUnauthorized)
		return
	}
	if s.failLeft > 0 {
		s.failLeft--
		http.Error(w, "not now", s.failStatus)
		return
	}
	if s.status != 0 {
		http.Error(w, "dangling stack reference", s.status)
		return
	}
	snap, err := snapshot.Decode(body, snapshot.DefaultLimits)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.ids = append(s.ids, snap.ID)
}

func (s *snapServer) state() (requests int, ids []string, bodies [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, slices.Clone(s.ids), slices.Clone(s.bodies)
}

func testSnapshot(id string) *snapshot.Snapshot {
	return &snapshot.Snapshot{
		Version: snapshot.Version, ID: id, Node: "n1", StartNS: 1, EndNS: 2,
		Trigger: snapshot.Trigger{Kind: "manual", Reason: "test"},
	}
}

func encodedSize(t *testing.T, id string) int64 {
	var b bytes.Buffer
	if err := snapshot.Encode(&b, testSnapshot(id)); err != nil {
		t.Fatal(err)
	}
	return int64(b.Len())
}

func newSpool(t *testing.T, url, dir string, maxBytes int64) (*SnapshotSpool, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := NewSnapshotSpool(SnapshotSpoolConfig{Server: url, Token: "t0k", Dir: dir, MaxBytes: maxBytes, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// run runs s until the test ends or stop is called.
func run(t *testing.T, s *SnapshotSpool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// refusedURL is an address nobody listens on.
func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	return "http://" + l.Addr().String()
}

func spoolFiles(t *testing.T, dir string) (names []string, total int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, _ := e.Info()
		names, total = append(names, e.Name()), total+info.Size()
	}
	return names, total
}

// TestSnapshotSpoolSurvivesOutageAndRestart: while the server is away,
// snapshots wait on disk within the bound (the oldest dropped and counted);
// a new spool on the same directory, as after an agent restart, sends them
// in order once a server answers.
func TestSnapshotSpoolSurvivesOutageAndRestart(t *testing.T) {
	dir := t.TempDir()
	size := encodedSize(t, "snap-1")
	maxBytes := 3*size + size/2
	away, reg := newSpool(t, refusedURL(t), dir, maxBytes)
	stop := run(t, away)
	for i := 1; i <= 5; i++ {
		if err := away.Put(testSnapshot(fmt.Sprintf("snap-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // several failed attempts
	stop()
	names, total := spoolFiles(t, dir)
	if away.Pending() != 3 || len(names) != 3 || total > maxBytes {
		t.Fatalf("after the outage: %d pending, files %q (%d bytes, bound %d)", away.Pending(), names, total, maxBytes)
	}
	for name, want := range map[string]float64{"dropped": 2, "spooled": 5, "shipped": 0} {
		if got := testutil.ToFloat64(metricOf(away, name)); got != want {
			t.Errorf("%s %v, want %v", name, got, want)
		}
	}
	if got := testutil.ToFloat64(away.m.spoolBytes); got != float64(total) {
		t.Errorf("spool bytes gauge %v, files hold %d", got, total)
	}
	if n, _ := testutil.GatherAndCount(reg, "flightrec_agent_snapshot_ship_failures_total"); n == 0 {
		t.Error("failed attempts not counted")
	}

	srv := &snapServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	back, _ := newSpool(t, ts.URL, dir, maxBytes)
	if back.Pending() != 3 {
		t.Fatalf("restarted spool has %d pending, want 3", back.Pending())
	}
	run(t, back)
	waitFor(t, "spool to drain", func() bool { return back.Pending() == 0 })
	_, ids, _ := srv.state()
	if want := []string{"snap-3", "snap-4", "snap-5"}; !slices.Equal(ids, want) {
		t.Errorf("server got %q, want %q in order", ids, want)
	}
	if names, _ := spoolFiles(t, dir); len(names) != 0 {
		t.Errorf("files left after shipping: %q", names)
	}
	if got := testutil.ToFloat64(back.m.shipped); got != 3 {
		t.Errorf("shipped %v, want 3", got)
	}
}

func metricOf(s *SnapshotSpool, name string) prometheus.Collector {
	return map[string]prometheus.Collector{"dropped": s.m.dropped, "spooled": s.m.spooled, "shipped": s.m.shipped, "rejected": s.m.rejected}[name]
}

// TestSnapshotSpoolAnswers: a 4xx other than 408 and 429 is final; 408,
// 429 and 5xx are retried with the same body until acknowledged.
func TestSnapshotSpoolAnswers(t *testing.T) {
	tests := []struct {
		name         string
		srv          *snapServer
		wantRequests int
		wantShipped  bool
	}{
		{"accepted", &snapServer{}, 1, true},
		{"bad request rejected", &snapServer{status: http.StatusBadRequest}, 1, false},
		{"too large rejected", &snapServer{status: http.StatusRequestEntityTooLarge}, 1, false},
		{"unavailable retried", &snapServer{failLeft: 3, failStatus: http.StatusServiceUnavailable}, 4, true},
		{"timeout retried", &snapServer{failLeft: 2, failStatus: http.StatusRequestTimeout}, 3, true},
		{"rate limited retried", &snapServer{failLeft: 2, failStatus: http.StatusTooManyRequests}, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(tt.srv)
			defer ts.Close()
			s, _ := newSpool(t, ts.URL, t.TempDir(), 1<<20)
			run(t, s)
			if err := s.Put(testSnapshot("snap-1")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "spool to settle", func() bool { return s.Pending() == 0 })
			time.Sleep(30 * time.Millisecond) // a retry would come within the max backoff
			requests, ids, bodies := tt.srv.state()
			if requests != tt.wantRequests || (len(ids) == 1) != tt.wantShipped {
				t.Errorf("%d requests, acknowledged %q; want %d requests, shipped %v", requests, ids, tt.wantRequests, tt.wantShipped)
			}
			for i, b := range bodies {
				if !bytes.Equal(b, bodies[0]) {
					t.Errorf("attempt %d sent a different body", i)
				}
			}
			wantRejected := 0.0
			if !tt.wantShipped {
				wantRejected = 1
			}
			if got := testutil.ToFloat64(s.m.rejected); got != wantRejected {
				t.Errorf("rejected %v, want %v", got, wantRejected)
			}
		})
	}
}

// TestSnapshotSpoolIgnoresUnfinishedWrites: a temporary file a crash left
// mid-write is deleted on start and never sent; complete files are.
func TestSnapshotSpoolIgnoresUnfinishedWrites(t *testing.T) {
	dir := t.TempDir()
	writer, _ := newSpool(t, refusedURL(t), dir, 1<<20)
	if err := writer.Put(testSnapshot("complete")); err != nil {
		t.Fatal(err)
	}
	var full bytes.Buffer
	snapshot.Encode(&full, testSnapshot("truncated"))
	crashed := filepath.Join(dir, "put-12345"+tmpSuffix)
	if err := os.WriteFile(crashed, full.Bytes()[:full.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, "notes.txt")
	os.WriteFile(stray, []byte("not a snapshot"), 0o600)

	srv := &snapServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	s, _ := newSpool(t, ts.URL, dir, 1<<20)
	if _, err := os.Stat(crashed); !os.IsNotExist(err) {
		t.Errorf("unfinished write still there: %v", err)
	}
	run(t, s)
	waitFor(t, "spool to drain", func() bool { return s.Pending() == 0 })
	requests, ids, _ := srv.state()
	if requests != 1 || !slices.Equal(ids, []string{"complete"}) {
		t.Errorf("%d requests, acknowledged %q; want only the complete snapshot", requests, ids)
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("a file that is not the spool's was touched: %v", err)
	}
}

// TestSnapshotSpoolPutRejects: what the server would refuse, or what cannot
// fit, never reaches the disk.
func TestSnapshotSpoolPutRejects(t *testing.T) {
	tests := []struct {
		name     string
		snap     *snapshot.Snapshot
		maxBytes int64
		says     string
	}{
		{"invalid", &snapshot.Snapshot{Version: snapshot.Version, ID: "bad id/..", Node: "n1"}, 1 << 20, "id"},
		{"larger than the spool", testSnapshot("snap-1"), 10, "more than the whole spool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := newSpool(t, refusedURL(t), dir, tt.maxBytes)
			err := s.Put(tt.snap)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Put: %v, want an error saying %q", err, tt.says)
			}
			if names, _ := spoolFiles(t, dir); len(names) != 0 || s.Pending() != 0 {
				t.Errorf("files written: %q", names)
			}
		})
	}
}

func TestNewSnapshotSpoolRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  SnapshotSpoolConfig
	}{
		{"no scheme", SnapshotSpoolConfig{Server: "flightrec:7070", Dir: t.TempDir()}},
		{"no directory", SnapshotSpoolConfig{Server: "http://flightrec:7070"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSnapshotSpool(tt.cfg, slog.New(slog.DiscardHandler), nil); err == nil {
				t.Error("no error")
			}
		})
	}
}
