package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/grafana/pyroscope-go"

	"github.com/flightrec/flightrec/server/ingest"
	"github.com/flightrec/flightrec/server/model"
)

// multipartBody builds a form as pyroscope-go does; parts alternate field
// name and content.
func multipartBody(t *testing.T, parts ...string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(parts); i += 2 {
		fw, err := w.CreateFormFile(parts[i], parts[i]+".pprof")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte(parts[i+1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), buf.Bytes()
}

func contentionPprof() *profile.Profile {
	p := cpuPprof(sample{[]string{"sync.(*Mutex).Unlock", "main"}, 1000, []string{"tenant", "a"}})
	p.SampleType = []*profile.ValueType{{Type: "contentions", Unit: "count"}, {Type: "delay", Unit: "nanoseconds"}}
	p.PeriodType = &profile.ValueType{Type: "contentions", Unit: "count"}
	p.Sample[0].Value = []int64{4, 1000}
	return p
}

func TestPyroscopeEndpoint(t *testing.T) {
	s := newServer(t, nil)
	cfg := `{"contentions":{"display-name":"mutex_count","units":"lock_samples"},"delay":{"display-name":"mutex_duration","units":"lock_nanoseconds"}}`
	ct, body := multipartBody(t, "profile", string(encode(t, contentionPprof(), true)), "sample_type_config", cfg)
	q := url.Values{
		"name":  {"shop.frontend{env=prod,otel.scope.name=x,__session_id__=42}"},
		"from":  {"1772600760000"}, // milliseconds
		"until": {"1772600770000"},
	}
	r := s.post(t, ingest.PyroscopePath+"?"+q.Encode(), bytes.NewReader(body), "Content-Type", ct)
	if r.status != http.StatusOK || r.Profiles != 2 {
		t.Fatalf("reply = %+v, want 200 with 2 profiles", r)
	}
	var names []string
	for _, p := range s.sink.profiles() {
		names = append(names, p.Type.Name)
		want := `{env="prod", otel_scope_name="x", service="shop.frontend", service_name="shop.frontend", tenant="a"}`
		if p.Labels.String() != want {
			t.Errorf("%s labels = %s, want %s", p.Type.Name, p.Labels, want)
		}
		if !p.Time.Equal(time.UnixMilli(1772600760000)) || p.Duration != 10*time.Second {
			t.Errorf("%s interval = %v+%v", p.Type.Name, p.Time, p.Duration)
		}
	}
	if !slices.Equal(names, []string{"mutex_contentions", "mutex_delay"}) {
		t.Errorf("types = %v, want mutex_contentions, mutex_delay (from the display names)", names)
	}

	// A raw body, an app suffix as the hint.
	r = s.post(t, ingest.PyroscopePath+"?name=shop.block_count&format=pprof", bytes.NewReader(encode(t, contentionPprof(), false)))
	if r.status != http.StatusOK {
		t.Fatalf("raw: %+v", r)
	}
	for _, p := range s.sink.profiles() {
		if !strings.HasPrefix(p.Type.Name, "block_") || p.Labels.Get("service_name") != "shop" {
			t.Errorf("raw: %s%s, want block_* of service_name shop", p.Type.Name, p.Labels)
		}
	}
}

func TestPyroscopeCumulative(t *testing.T) {
	heap := func(v int64) []byte {
		p := cpuPprof(sample{[]string{"malloc", "main"}, v, nil})
		p.SampleType[0] = &profile.ValueType{Type: "alloc_objects", Unit: "count"}
		p.PeriodType = &profile.ValueType{Type: "space", Unit: "bytes"}
		return encode(t, p, true)
	}
	cfg := `{"alloc_objects":{"units":"objects","cumulative":true}}`
	s := newServer(t, nil)
	ct, body := multipartBody(t, "profile", string(heap(50)), "prev_profile", string(heap(20)), "sample_type_config", cfg)
	if r := s.post(t, ingest.PyroscopePath+"?name=old", bytes.NewReader(body), "Content-Type", ct); r.status != 200 || r.Profiles != 1 {
		t.Fatalf("reply = %+v", r)
	}
	if ps := s.sink.profiles(); len(ps) != 1 || ps[0].Stacks.Total()*ps[0].Scale != 30 {
		t.Errorf("got %v, want one alloc_objects profile of 50-20 = 30", ps)
	}
	ct, body = multipartBody(t, "profile", string(heap(50)), "sample_type_config", cfg)
	if r := s.post(t, ingest.PyroscopePath+"?name=old", bytes.NewReader(body), "Content-Type", ct); r.status != 200 || r.Profiles != 0 {
		t.Errorf("without prev_profile: %+v, want 200 storing nothing of the cumulative type", r)
	}
}

// pyroLogger fails the test on the client's errors (a rejected upload).
type pyroLogger struct {
	mu   sync.Mutex
	errs []string
}

func (l *pyroLogger) Infof(string, ...any)  {}
func (l *pyroLogger) Debugf(string, ...any) {}
func (l *pyroLogger) Errorf(f string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(f, args...))
}

//go:noinline
func busyPyroscope(d time.Duration) uint64 {
	var x uint64
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range uint64(10000) {
			x = x*31 + i
		}
	}
	return x
}

// contend makes mutex and block profile events: goroutines queueing on a
// lock and on an unbuffered channel.
func contend(d time.Duration) {
	var mu sync.Mutex
	ch := make(chan int)
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(end) {
				mu.Lock()
				time.Sleep(100 * time.Microsecond)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for time.Now().Before(end) {
			ch <- 1
		}
		close(ch)
	})
	for range ch {
		time.Sleep(50 * time.Microsecond)
	}
	wg.Wait()
}

func TestPyroscopeClient(t *testing.T) {
	if testing.Short() {
		t.Skip("profiles the test process for 3 s")
	}
	s := newServer(t, nil)
	defer runtime.SetMutexProfileFraction(runtime.SetMutexProfileFraction(1))
	runtime.SetBlockProfileRate(1)
	defer runtime.SetBlockProfileRate(0)

	log := &pyroLogger{}
	prof, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: "myapp",
		ServerAddress:   s.URL,
		Tags:            map[string]string{"env": "test", "region": "eu-1"},
		UploadRate:      time.Second,
		Logger:          log,
		ProfileTypes: []pyroscope.ProfileType{
			pyroscope.ProfileCPU, pyroscope.ProfileAllocObjects, pyroscope.ProfileAllocSpace,
			pyroscope.ProfileInuseObjects, pyroscope.ProfileInuseSpace, pyroscope.ProfileGoroutines,
			pyroscope.ProfileMutexCount, pyroscope.ProfileMutexDuration,
			pyroscope.ProfileBlockCount, pyroscope.ProfileBlockDuration,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go contend(3 * time.Second)
	busyPyroscope(1500 * time.Millisecond)
	pyroscope.TagWrapper(context.Background(), pyroscope.Labels("tenant", "a"), func(context.Context) {
		busyPyroscope(1500 * time.Millisecond)
	})
	prof.Flush(true)
	if err := prof.Stop(); err != nil {
		t.Fatal(err)
	}
	if len(log.errs) > 0 {
		t.Errorf("client errors: %q", log.errs)
	}
	checkPyroscopeProfiles(t, s.sink.profiles())
}

func checkPyroscopeProfiles(t *testing.T, ps []*model.Profile) {
	t.Helper()
	types := map[string]bool{}
	busy, tenant := false, false
	for _, p := range ps {
		types[p.Type.Name] = true
		for name, want := range map[string]string{"service_name": "myapp", "service": "myapp", "env": "test", "region": "eu-1"} {
			if got := p.Labels.Get(name); got != want {
				t.Errorf("%s%s: %s = %q, want %q", p.Type.Name, p.Labels, name, got, want)
			}
		}
		if p.Labels.Has("__session_id__") {
			t.Errorf("%s%s: reserved label kept", p.Type.Name, p.Labels)
		}
		if p.Type.Name == "cpu" && hasFunction(p, "busyPyroscope") {
			busy = true
			tenant = tenant || p.Labels.Get("tenant") == "a"
		}
	}
	for _, want := range []string{"cpu", "alloc_objects", "alloc_space", "inuse_objects", "inuse_space", "goroutine",
		"mutex_contentions", "mutex_delay", "block_contentions", "block_delay"} {
		if !types[want] {
			t.Errorf("no %s profile; got types %v", want, types)
		}
	}
	if !busy {
		t.Errorf("busyPyroscope is in no cpu profile")
	}
	if !tenant {
		t.Errorf("no cpu series with tenant=a (pyroscope.TagWrapper)")
	}
}
