package ingest_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/ingest"
)

// spans is a pprof with n samples of distinct span_id values, alternately
// tenant a and b.
func spans(t *testing.T, first, n int) []byte {
	t.Helper()
	var ss []sample
	for i := first; i < first+n; i++ {
		tenant := []string{"a", "b"}[i%2]
		ss = append(ss, sample{[]string{"work", "main"}, 10, []string{"span_id", strconv.Itoa(i), "tenant", tenant}})
	}
	return encode(t, cpuPprof(ss...), true)
}

func TestLimiterThroughPprof(t *testing.T) {
	var logs bytes.Buffer
	s := newServer(t, func(h *ingest.Handler) {
		h.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		h.Limiter = ingest.NewLimiter(ingest.LimiterConfig{MaxLabelValues: 100, Logger: h.Logger, Registerer: h.Metrics})
	})
	path := ingest.PprofPath + "?labels=" + url.QueryEscape(`{service="api"}`)
	if r := s.post(t, path, bytes.NewReader(spans(t, 0, 1000))); r.status != 200 || r.Profiles != 102 {
		t.Fatalf("reply = %+v, want 200 with 102 profiles (100 spans, 2 tenants without)", r)
	}
	withSpan, total := 0, map[string]int64{}
	for _, p := range s.sink.profiles() {
		if !p.Labels.Has("tenant") {
			t.Errorf("series %s lost tenant (2 values, under the limit)", p.Labels)
		}
		if v := p.Labels.Get("span_id"); v != "" {
			withSpan++
			if n, _ := strconv.Atoi(v); n >= 100 {
				t.Errorf("span_id %s admitted, want the first 100 only", v)
			}
			continue
		}
		total[p.Labels.Get("tenant")] += p.Stacks.Total() * p.Scale
	}
	if withSpan != 100 {
		t.Errorf("%d series with span_id, want 100", withSpan)
	}
	// Spans 100..999 count without span_id, half per tenant.
	if total["a"] != 450*10 || total["b"] != 450*10 {
		t.Errorf("totals without span_id = %v, want 4500 each", total)
	}
	if got := s.counter(t, "flightrec_ingest_labels_dropped_total", "limit"); got != 900 {
		t.Errorf("labels_dropped_total{limit} = %v, want 900", got)
	}
	if n := strings.Count(logs.String(), "limit of distinct values"); n != 1 {
		t.Errorf("logged %d times, want once per series and label:\n%s", n, logs.String())
	}

	// Admitted values stay admitted; new ones are dropped; another base
	// series has a limit of its own.
	s.post(t, path, bytes.NewReader(spans(t, 50, 100)))
	withSpan = 0
	for _, p := range s.sink.profiles() {
		if p.Labels.Has("span_id") {
			withSpan++
		}
	}
	if withSpan != 50 {
		t.Errorf("second request: %d series with span_id, want 50 (spans 50..99)", withSpan)
	}
	other := ingest.PprofPath + "?labels=" + url.QueryEscape(`{service="worker"}`)
	if r := s.post(t, other, bytes.NewReader(spans(t, 500, 10))); r.Profiles != 10 {
		t.Errorf("other service: %d profiles, want 10 (its own limit)", r.Profiles)
	}
	if n := strings.Count(logs.String(), "limit of distinct values"); n != 1 {
		t.Errorf("logged %d times after more drops, want still 1", n)
	}
}

func TestLimiterAdmit(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := ingest.NewLimiter(ingest.LimiterConfig{MaxLabelValues: 2, MaxLabelNames: 2, Registerer: reg})
	base := labels.FromStrings("service", "api")
	tests := []struct {
		typ, sample, want string
	}{
		{"cpu", `{span="1"}`, `{span="1"}`},
		{"cpu", `{span="2"}`, `{span="2"}`},
		{"cpu", `{span="3"}`, `{}`},
		{"cpu", `{span="1", user="u"}`, `{span="1", user="u"}`},
		{"cpu", `{route="/", span="2"}`, `{span="2"}`}, // third name
		{"alloc_space", `{span="3"}`, `{span="3"}`},    // other type, other series
	}
	p := parserFor(t)
	for _, tt := range tests {
		got := l.Admit(tt.typ, base, p(tt.sample))
		if got.String() != tt.want {
			t.Errorf("Admit(%s, %s) = %s, want %s", tt.typ, tt.sample, got, tt.want)
		}
	}
	dropped, err := reg.Gather()
	if err != nil || len(dropped) != 1 {
		t.Fatalf("gather: %v, %d families", err, len(dropped))
	}
	if got := dropped[0].GetMetric()[0].GetCounter().GetValue(); got != 2 {
		t.Errorf("dropped = %v, want 2", got)
	}
}

func parserFor(t *testing.T) func(string) labels.Labels {
	return func(s string) labels.Labels {
		b := labels.NewBuilder(labels.EmptyLabels())
		for kv := range strings.SplitSeq(strings.Trim(s, "{}"), ", ") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				b.Set(k, strings.Trim(v, `"`))
			}
		}
		return b.Labels()
	}
}

func TestLimiterSeed(t *testing.T) {
	l := ingest.NewLimiter(ingest.LimiterConfig{MaxLabelValues: 2})
	isSample := func(name string) bool { return name == "span" }
	l.Seed([]labels.Labels{
		labels.FromStrings("__name__", "cpu", "service", "api", "span", "old1"),
		labels.FromStrings("__name__", "cpu", "service", "api", "span", "old2"),
		labels.FromStrings("__name__", "cpu", "service", "api", "span", "old3"), // past the limit
		labels.FromStrings("__name__", "cpu", "service", "api"),
	}, isSample)
	base := labels.FromStrings("service", "api")
	for span, kept := range map[string]bool{"old1": true, "old2": true, "old3": false, "new": false} {
		got := l.Admit("cpu", base, labels.FromStrings("span", span)).Has("span")
		if got != kept {
			t.Errorf("span %s kept = %v, want %v", span, got, kept)
		}
	}
	if !l.Admit("alloc_space", base, labels.FromStrings("span", "new")).Has("span") {
		t.Errorf("seeding cpu limited alloc_space")
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := ingest.NewLimiter(ingest.LimiterConfig{MaxLabelValues: 100})
	base := labels.FromStrings("service", "api")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				l.Admit("cpu", base, labels.FromStrings("span", fmt.Sprint(g*1000+i)))
			}
		})
	}
	wg.Wait()
	admitted := 0
	for i := range 8000 {
		if l.Admit("cpu", base, labels.FromStrings("span", fmt.Sprint(i))).Has("span") {
			admitted++
		}
	}
	if admitted != 100 {
		t.Errorf("%d distinct values admitted by 8 goroutines, want exactly 100", admitted)
	}
}
