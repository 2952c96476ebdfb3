package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/ingest"
	"github.com/flightrec/flightrec/server/model"
)

// agentPprof is shaped as docs/wire.md says: samples/count and
// cpu/nanoseconds, one sample label set per process.
func agentPprof(period int64, pids ...string) *profile.Profile {
	var samples []sample
	for i, pid := range pids {
		samples = append(samples, sample{
			stack:  []string{"work", "main"},
			value:  int64(i+1) * period,
			labels: []string{"node", "n1", "pid", pid, "comm", "app" + pid, "service", "svc" + pid},
		})
	}
	p := cpuPprof(samples...)
	p.SampleType = append([]*profile.ValueType{{Type: "samples", Unit: "count"}}, p.SampleType...)
	p.Period = period
	for i, s := range p.Sample {
		s.Value = []int64{int64(i + 1), s.Value[0]}
	}
	return p
}

func TestAgentEndpoint(t *testing.T) {
	// A limit of 1 value shows the agent's labels are not limited.
	s := newServer(t, func(h *ingest.Handler) { h.Limiter = ingest.NewLimiter(ingest.LimiterConfig{MaxLabelValues: 1}) })
	const period = 52631578
	body := encode(t, agentPprof(period, "42", "43", "44"), true)
	r := s.post(t, ingest.AgentPath, bytes.NewReader(body),
		"Content-Type", "application/vnd.google.protobuf", "Content-Encoding", "gzip", "Idempotency-Key", "n1-0123456789ab-7")
	if r.status != http.StatusOK || r.Profiles != 3 || r.Samples != 3 {
		t.Fatalf("reply = %+v, want 200 with 3 profiles, 3 samples", r)
	}
	batches := s.sink.take()
	if len(batches) != 1 || batches[0].Key != "n1-0123456789ab-7" {
		t.Fatalf("got %d batches (key %q), want 1 with the Idempotency-Key", len(batches), batches[0].Key)
	}
	for i, p := range batches[0].Profiles {
		pid := []string{"42", "43", "44"}[i]
		want := `{comm="app` + pid + `", node="n1", pid="` + pid + `", service="svc` + pid + `"}`
		if p.Type.Name != "cpu" || p.Labels.String() != want || p.Scale != int64(i+1)*period {
			t.Errorf("profile %d: %s%s scale %d; want cpu%s scale %d", i, p.Type.Name, p.Labels, p.Scale, want, int64(i+1)*period)
		}
	}
	// Uncompressed and without Content-Encoding is accepted too.
	r = s.post(t, ingest.AgentPath, bytes.NewReader(encode(t, agentPprof(period, "42"), false)))
	if r.status != http.StatusOK || r.Profiles != 1 {
		t.Errorf("uncompressed: reply = %+v", r)
	}
	if got := s.counter(t, "flightrec_ingest_labels_dropped_total", "limit"); got != 0 {
		t.Errorf("agent labels dropped by the limiter: %v", got)
	}
	if got := s.counter(t, "flightrec_ingest_requests_total", "agent"); got != 2 {
		t.Errorf("requests_total{agent} = %v, want 2", got)
	}
	if got := s.counter(t, "flightrec_ingest_profiles_total", "agent"); got != 4 {
		t.Errorf("profiles_total{agent} = %v, want 4", got)
	}
	if got := s.counter(t, "flightrec_ingest_bytes_total", "agent"); got < float64(len(body)) {
		t.Errorf("bytes_total{agent} = %v, want at least %d", got, len(body))
	}
}

func TestPprofEndpoint(t *testing.T) {
	s := newServer(t, nil)
	p := cpuPprof(
		sample{[]string{"a", "main"}, 30, []string{"http.method", "GET"}},
		sample{[]string{"b", "main"}, 20, []string{"http.method", "GET", "service", "evil"}},
		sample{[]string{"a", "main"}, 10, nil},
	)
	q := url.Values{"labels": {`{service="api", version="1.2"}`}}
	r := s.post(t, ingest.PprofPath+"?"+q.Encode(), bytes.NewReader(encode(t, p, true))) // gzip sniffed
	if r.status != http.StatusOK || r.Profiles != 2 || r.Samples != 3 {
		t.Fatalf("reply = %+v, want 200 with 2 profiles, 3 samples", r)
	}
	got := map[string]int64{}
	for _, mp := range s.sink.profiles() {
		got[mp.Type.Name+mp.Labels.String()] = mp.Stacks.Total() * mp.Scale
	}
	want := map[string]int64{
		`cpu{http_method="GET", service="api", version="1.2"}`: 50,
		`cpu{service="api", version="1.2"}`:                    10,
	}
	if len(got) != len(want) || got[`cpu{http_method="GET", service="api", version="1.2"}`] != 50 || got[`cpu{service="api", version="1.2"}`] != 10 {
		t.Errorf("series = %v, want %v", got, want)
	}
	if got := s.counter(t, "flightrec_ingest_labels_dropped_total", "conflict"); got != 1 {
		t.Errorf("labels_dropped_total{conflict} = %v, want 1 (service=evil)", got)
	}
}

func TestEmptyProfile(t *testing.T) {
	s := newServer(t, func(h *ingest.Handler) { h.Sink.(*memSink).err = errStoreDown })
	r := s.post(t, ingest.PprofPath, bytes.NewReader(encode(t, cpuPprof(sample{[]string{"a"}, 0, nil}), false)))
	if r.status != http.StatusOK || r.Profiles != 0 {
		t.Errorf("reply = %+v, want 200 with 0 profiles (the sink is not called)", r)
	}
}

func TestSinkError(t *testing.T) {
	s := newServer(t, func(h *ingest.Handler) { h.Sink.(*memSink).err = errStoreDown })
	r := s.post(t, ingest.AgentPath, bytes.NewReader(encode(t, agentPprof(100, "1"), true)))
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.Error, "disk full") {
		t.Errorf("reply = %+v, want 503 naming the store's error", r)
	}
	if got := s.counter(t, "flightrec_ingest_rejected_total", "agent", "store_error"); got != 1 {
		t.Errorf("rejected_total{agent,store_error} = %v, want 1", got)
	}
}

// bomb is 1 GiB of zeros, gzipped (1.3 MiB), built without holding 1 GiB.
func bomb(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zeros := make([]byte, 1<<20)
	for range 1024 {
		w.Write(zeros)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chunked hides a body's length, so the server cannot refuse it up front.
type chunked struct{ io.Reader }

func TestBadRequests(t *testing.T) {
	s := newServer(t, nil)
	good := encode(t, agentPprof(100, "1"), true)
	truncated := good[:len(good)/2]
	negative := encode(t, cpuPprof(sample{[]string{"a"}, -5, nil}), false)
	oversized := make([]byte, ingest.DefaultMaxBodyBytes+1)
	mpCT, mpBody := multipartBody(t, "profile", "not a pprof")
	tests := []struct {
		name    string
		path    string
		body    io.Reader
		headers []string
		status  int
		reason  string
		msg     string
	}{
		{"malformed pprof", ingest.AgentPath, strings.NewReader("this is not a profile"), nil, 400, "malformed", "parse pprof: "},
		{"truncated gzip", ingest.AgentPath, bytes.NewReader(truncated), nil, 400, "bad_gzip", "truncated gzip"},
		{"gzip bomb", ingest.AgentPath, bytes.NewReader(bomb(t)), []string{"Content-Encoding", "gzip"}, 413, "too_large", "decompressed body exceeds 256 MiB"},
		{"oversized body", ingest.AgentPath, bytes.NewReader(oversized), nil, 413, "too_large", "exceeds 32 MiB"},
		{"oversized chunked body", ingest.PprofPath, chunked{bytes.NewReader(oversized)}, nil, 413, "too_large", "request body exceeds 32 MiB"},
		{"unknown parameter", ingest.PprofPath + "?labels=%7Ba%3D%22b%22%7D&name=x", bytes.NewReader(good), nil, 400, "bad_request", `unknown parameter "name"`},
		{"agent parameter", ingest.AgentPath + "?debug=1", bytes.NewReader(good), nil, 400, "bad_request", `unknown parameter "debug"`},
		{"repeated parameter", ingest.PprofPath + "?labels=%7B%7D&labels=%7B%7D", bytes.NewReader(good), nil, 400, "bad_request", `parameter "labels" given 2 times`},
		{"labels matcher", ingest.PprofPath + "?labels=" + url.QueryEscape(`{service=~"api"}`), bytes.NewReader(good), nil, 400, "bad_labels", "parameter labels: 1:9: parse error"},
		{"labels bad name", ingest.PprofPath + "?labels=" + url.QueryEscape(`{http.method="GET"}`), bytes.NewReader(good), nil, 400, "bad_labels", `invalid label name "http.method"`},
		{"labels metric name", ingest.PprofPath + "?labels=" + url.QueryEscape(`cpu{a="b"}`), bytes.NewReader(good), nil, 400, "bad_labels", "names a profile type (cpu)"},
		{"negative values", ingest.PprofPath, bytes.NewReader(negative), nil, 400, "malformed", "negative cpu value -5"},
		{"content encoding", ingest.AgentPath, bytes.NewReader(good), []string{"Content-Encoding", "br"}, 415, "unsupported", `Content-Encoding "br" is not supported`},
		{"gzip header, plain body", ingest.AgentPath, bytes.NewReader(encode(t, agentPprof(100, "1"), false)), []string{"Content-Encoding", "gzip"}, 400, "bad_gzip", "Content-Encoding is gzip but the body is not"},
		{"long idempotency key", ingest.AgentPath, bytes.NewReader(good), []string{"Idempotency-Key", strings.Repeat("k", 300)}, 400, "bad_request", "Idempotency-Key is longer than 256 bytes"},
		{"pyroscope format", ingest.PyroscopePath + "?name=a&format=jfr", bytes.NewReader(good), nil, 415, "unsupported", `format "jfr" is not supported`},
		{"pyroscope groups", ingest.PyroscopePath + "?name=a", strings.NewReader("main;work 10"), []string{"Content-Type", "text/plain"}, 415, "unsupported", `format "groups" is not supported`},
		{"pyroscope bad from", ingest.PyroscopePath + "?name=a&from=yesterday&format=pprof", bytes.NewReader(good), nil, 400, "malformed", `parameter from: "yesterday" is not a Unix time`},
		{"pyroscope bad name", ingest.PyroscopePath + "?name=" + url.QueryEscape("a{b=c"), bytes.NewReader(good), []string{"Content-Type", "binary/octet-stream"}, 400, "bad_labels", "closing '}'"},
		{"pyroscope malformed part", ingest.PyroscopePath + "?name=a", bytes.NewReader(mpBody), []string{"Content-Type", mpCT}, 400, "malformed", "parse pprof: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format := formatOf(tt.path)
			before := s.counter(t, "flightrec_ingest_rejected_total", format, tt.reason)
			r := s.post(t, tt.path, tt.body, tt.headers...)
			if r.status != tt.status || !strings.Contains(r.Error, tt.msg) {
				t.Errorf("reply = %d %q, want %d containing %q", r.status, r.Error, tt.status, tt.msg)
			}
			if b := s.sink.take(); len(b) != 0 {
				t.Errorf("%d batches reached the sink", len(b))
			}
			if got := s.counter(t, "flightrec_ingest_rejected_total", format, tt.reason); got != before+1 {
				t.Errorf("rejected_total{%s,%s} = %v, want %v", format, tt.reason, got, before+1)
			}
			// The server keeps serving.
			if r := s.post(t, ingest.AgentPath, bytes.NewReader(good)); r.status != http.StatusOK || len(s.sink.take()) != 1 {
				t.Errorf("good request after: %+v", r)
			}
		})
	}
}

func formatOf(path string) string {
	switch {
	case strings.HasPrefix(path, ingest.AgentPath):
		return "agent"
	case strings.HasPrefix(path, ingest.PprofPath):
		return "pprof"
	}
	return "pyroscope"
}

func TestMethodNotAllowed(t *testing.T) {
	s := newServer(t, nil)
	resp, err := s.Client().Get(s.URL + ingest.AgentPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
}

// checkingSink checks, during Append, that every frame of a batch names
// the function its key says: requests served at once must not share the
// pooled memory their batches live in.
type checkingSink struct {
	mu   sync.Mutex
	errs []string
	n    int
}

func (s *checkingSink) Append(_ context.Context, b *model.Batch) error {
	for _, p := range b.Profiles {
		for _, f := range p.Stacks.Frames {
			if f.Function != "fn-"+b.Key {
				s.mu.Lock()
				s.errs = append(s.errs, fmt.Sprintf("batch %s has frame %q", b.Key, f.Function))
				s.mu.Unlock()
			}
		}
	}
	runtime.Gosched() // let other requests run while this batch is in use
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return nil
}

func TestConcurrentRequests(t *testing.T) {
	sink := &checkingSink{}
	s := newServer(t, func(h *ingest.Handler) { h.Sink = sink })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				key := fmt.Sprintf("%d-%d", g, i)
				body := encode(t, cpuPprof(sample{[]string{"fn-" + key}, 1, []string{"pid", key}}), i%2 == 0)
				if r := s.post(t, ingest.AgentPath, bytes.NewReader(body), "Idempotency-Key", key); r.status != http.StatusOK {
					t.Errorf("%s: %+v", key, r)
				}
			}
		})
	}
	wg.Wait()
	if len(sink.errs) > 0 || sink.n != 160 {
		t.Errorf("%d batches stored, want 160; errors: %q", sink.n, sink.errs)
	}
}
