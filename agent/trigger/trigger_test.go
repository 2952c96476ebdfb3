package trigger

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flightrec/flightrec/agent/events"
	"github.com/flightrec/flightrec/wire/snapshot"
)

func TestParseSelector(t *testing.T) {
	labels := map[string]string{"service": "api", "version": "1.8.2", "env": "prod"}
	tests := []struct {
		in      string
		matches bool
		bad     bool
	}{
		{"", true, false},
		{"{}", true, false},
		{`{service="api"}`, true, false},
		{`{service="db"}`, false, false},
		{`{service="api", version=~"1\\.8\\..*"}`, true, false},
		{`{version=~"1\\.9.*"}`, false, false},
		{`{env!="prod"}`, false, false},
		{`{missing=""}`, true, false},
		{`{service!~"a.*"}`, false, false},
		{`service="api"`, false, true},
		{`{service=api}`, false, true},
		{`{service~"x"}`, false, true},
		{`{service="api" env="x"}`, false, true},
		{`{v=~"("}`, false, true},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.in)
		if (err != nil) != tt.bad {
			t.Errorf("ParseSelector(%q) error %v, want bad=%v", tt.in, err, tt.bad)
			continue
		}
		if err == nil && sel.Matches(labels) != tt.matches {
			t.Errorf("%q.Matches = %v, want %v", tt.in, !tt.matches, tt.matches)
		}
	}
}

// recorder captures what the manager asks for and spools.
type recorder struct {
	mu    sync.Mutex
	asked []*snapshot.Snapshot
	put   []*snapshot.Snapshot
}

func (r *recorder) snap(meta *snapshot.Snapshot, at time.Time, before, after time.Duration) <-chan Result {
	r.mu.Lock()
	r.asked = append(r.asked, meta)
	r.mu.Unlock()
	ch := make(chan Result, 1)
	meta.StartNS, meta.EndNS = at.Add(-before).UnixNano(), at.Add(after).UnixNano()
	ch <- Result{Snapshot: meta}
	return ch
}

func (r *recorder) Put(s *snapshot.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.put = append(r.put, s)
	return nil
}

func (r *recorder) count() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.asked), len(r.put)
}

func newTestManager(now *time.Time) (*Manager, *recorder) {
	r := &recorder{}
	m := New(Config{Node: "node/1", Cooldown: time.Minute, RateLimit: 3, RateWindow: 10 * time.Minute, Now: func() time.Time { return *now }},
		r.snap, r, slog.New(slog.DiscardHandler), nil)
	return m, r
}

func TestFireLimits(t *testing.T) {
	now := time.Unix(1000, 0)
	m, r := newTestManager(&now)
	steps := []struct {
		req  Request
		want string
		at   time.Duration // advance before
	}{
		{Request{Kind: "manual", Key: "a"}, Fired, 0},
		{Request{Kind: "manual", Key: "a"}, Cooldown, 30 * time.Second},
		{Request{Kind: "manual", Key: "b"}, Fired, 0},
		{Request{Kind: "alert", ServerID: "t-1"}, Fired, 0},
		{Request{Kind: "alert", ServerID: "t-1"}, Duplicate, 0},
		{Request{Kind: "manual", Key: "c"}, RateLimited, 0},
		{Request{Kind: "manual", Key: "a"}, RateLimited, 2 * time.Minute}, // cooldown over, rate not
		{Request{Kind: "manual", Key: "a"}, Fired, 10 * time.Minute},
	}
	for i, s := range steps {
		now = now.Add(s.at)
		if got, _ := m.Fire(s.req); got != s.want {
			t.Errorf("step %d: %s, want %s", i, got, s.want)
		}
	}
	m.Wait(context.Background())
	if asked, put := r.count(); asked != 4 || put != 4 {
		t.Errorf("asked %d snapshots, spooled %d; want 4", asked, put)
	}
	if got := testutil.ToFloat64(m.m.WithLabelValues("manual", RateLimited)); got != 2 {
		t.Errorf("rate-limited counter %v, want 2", got)
	}
	ids := map[string]bool{}
	for _, s := range r.put { // delivered by goroutines: any order
		if !strings.HasPrefix(s.ID, "node_1-") || s.Node != "node/1" || s.EndNS-s.StartNS != int64(70*time.Second) {
			t.Errorf("snapshot meta %+v", s)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("meta invalid: %v", err)
		}
		ids[s.ID] = true
	}
	if len(ids) != 4 {
		t.Errorf("snapshot ids not unique: %v", ids)
	}
}

func TestLocal(t *testing.T) {
	now := time.Unix(1000, 0)
	m, r := newTestManager(&now)
	watch, _ := ParseSelector(`{service="api"}`)
	l := NewLocal(m, watch, 0.9, 30*time.Second)
	api := map[string]string{"service": "api", "comm": "api-server"}
	other := map[string]string{"service": "batch"}
	l.OnEvent(events.ProcEvent{Kind: events.KindSignal, PID: 7, TID: 8, Signal: 11, Addr: 0xdead}, other)
	l.OnEvent(events.ProcEvent{Kind: events.KindExit, PID: 7}, api)
	if asked, _ := r.count(); asked != 0 {
		t.Fatalf("unwatched process or exit event fired %d triggers", asked)
	}
	l.OnEvent(events.ProcEvent{Kind: events.KindSignal, PID: 7, TID: 8, Signal: 11, Addr: 0xdead}, api)
	l.OnEvent(events.ProcEvent{Kind: events.KindOOMKill, PID: 9}, api)
	for _, f := range []float64{0.95, 0.99} { // above, but not for 30 s yet
		l.ObserveCPU(now, 12, f, api)
		now = now.Add(10 * time.Second)
	}
	l.ObserveCPU(now, 12, 0.5, api) // dips: the clock restarts
	for i := 0; i < 4; i++ {
		now = now.Add(10 * time.Second)
		l.ObserveCPU(now, 12, 0.97, api)
	}
	m.Wait(context.Background())
	r.mu.Lock()
	defer r.mu.Unlock()
	var kinds []string
	for _, s := range r.asked {
		kinds = append(kinds, s.Trigger.Kind+":"+s.Trigger.Reason)
	}
	if len(kinds) != 3 || !strings.HasPrefix(kinds[0], "signal:SIGSEGV in api-server (pid 7, thread 8) at 0xdead") ||
		!strings.HasPrefix(kinds[1], "oom:") || !strings.HasPrefix(kinds[2], "cpu:api-server (pid 12) above 90%") {
		t.Errorf("local triggers %q", kinds)
	}
}

func TestAdminHandler(t *testing.T) {
	now := time.Unix(1000, 0)
	m, r := newTestManager(&now)
	srv := httptest.NewServer(m.AdminHandler())
	defer srv.Close()
	post := func(q string) (int, map[string]string) {
		resp, err := http.Post(srv.URL+"/trigger?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, body := post("reason=slow&before=30s&after=5s"); code != 202 || body["outcome"] != Fired || body["id"] == "" {
		t.Errorf("first trigger: %d %v", code, body)
	}
	if code, body := post("reason=again"); code != 429 || body["outcome"] != Cooldown {
		t.Errorf("second trigger: %d %v", code, body)
	}
	if code, _ := post("before=forever"); code != 400 {
		t.Errorf("bad duration: %d", code)
	}
	m.Wait(context.Background())
	if s := r.put[0]; s.Trigger.Reason != "slow" || s.EndNS-s.StartNS != int64(35*time.Second) {
		t.Errorf("snapshot %+v", s.Trigger)
	}
}

// TestPoll runs the long poll against a server that answers like flightrec's
// (docs/triggers.md): one trigger, then nothing, then an error, then the
// same trigger again (redelivery must not fire twice).
func TestPoll(t *testing.T) {
	now := time.Unix(1000, 0)
	m, r := newTestManager(&now)
	var mu sync.Mutex
	var queries []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		calls++
		n := calls
		queries = append(queries, req.URL.RawQuery)
		mu.Unlock()
		if req.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no token", 401)
			return
		}
		tr := `{"triggers":[{"id":"t-5","kind":"alert","reason":"burn","time_ns":900000000000,"selector":"{service=\"api\"}","labels":{"alertname":"Burn"},"fingerprint":"fp","before_s":30,"after_s":5}]}`
		switch n {
		case 1, 4:
			w.Write([]byte(tr))
		case 2:
			w.WriteHeader(http.StatusNoContent)
		case 3:
			http.Error(w, "restarting", 503)
		default:
			time.Sleep(50 * time.Millisecond)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.Poll(ctx, ChannelConfig{Server: srv.URL, Token: "tok", Node: "node/1", AgentID: "a1", Wait: time.Second}, slog.New(slog.DiscardHandler))
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := calls
		mu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	m.Wait(context.Background())
	if asked, _ := r.count(); asked != 1 {
		t.Fatalf("%d snapshots for one server trigger delivered twice", asked)
	}
	s := r.asked[0]
	if s.Trigger.ID != "t-5" || s.Trigger.Kind != "alert" || s.Trigger.Labels["alertname"] != "Burn" || s.Trigger.TimeNS != 900e9 {
		t.Errorf("trigger %+v", s.Trigger)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(queries[1], "after=t-5") || !strings.Contains(queries[0], "node=node%2F1") {
		t.Errorf("poll queries %q: want node and after", queries)
	}
}
