package triggers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flightrec/flightrec/server/triggers"
)

func TestManualResolvesNodesFromStore(t *testing.T) {
	st := fleetStore(t, time.Now())
	s := serve(t, triggers.StoreResolver{Store: st}, triggers.Config{RateLimit: 100})
	polled := map[string]bool{} // by pending, which polls
	tests := []struct {
		selector string
		nodes    []string
	}{
		{`{service="api"}`, []string{"n1", "n2", "n4"}}, // every type; not "old"
		{`cpu{service="api"}`, []string{"n1", "n2"}},
		{`off_cpu{}`, []string{"n4"}},
		{`{service="db"}`, []string{"n3"}},
		{`{node=~"n[13]"}`, []string{"n1", "n3"}},
		{`{service="nope"}`, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.selector, func(t *testing.T) {
			status, body := post(t, s.URL+triggers.ManualPath, triggers.ManualRequest{Selector: tt.selector, Reason: "latency spike"})
			var res triggers.Result
			if err := json.Unmarshal(body, &res); err != nil || status != http.StatusOK {
				t.Fatalf("%d %s", status, body)
			}
			if !slices.Equal(res.Nodes, tt.nodes) {
				t.Errorf("nodes %v, want %v", res.Nodes, tt.nodes)
			}
			if len(tt.nodes) == 0 {
				if res.Outcome != triggers.NoNodes || res.ID != "" || !strings.Contains(res.Message, "no node has profiles matching") {
					t.Errorf("no nodes: %s", body)
				}
				return
			}
			var notPolling []string
			for _, n := range tt.nodes {
				if !polled[n] {
					notPolling = append(notPolling, n)
				}
			}
			if res.Outcome != triggers.Fired || !strings.HasPrefix(res.ID, "t-") || !slices.Equal(res.NotPolling, notPolling) {
				t.Errorf("answer %s; want not polling %v", body, notPolling)
			}
			for _, n := range tt.nodes {
				polled[n] = true
				got := pending(t, s, n)
				last := got[len(got)-1]
				if last.ID != res.ID || last.Kind != "manual" || last.Reason != "latency spike" || last.Selector != tt.selector ||
					last.BeforeS != 60 || last.AfterS != 10 {
					t.Errorf("%s got %+v", n, last)
				}
			}
		})
	}
	if got := pending(t, s, "old"); got != nil {
		t.Errorf("node old, outside the look-back, got %v", got)
	}
	if n := count(t, s, "manual", "fired"); n != 5 {
		t.Errorf("fired count %d", n)
	}
}

func TestManualRequests(t *testing.T) {
	s := serve(t, stubResolver{`{service="api"}`: {"n1"}}, triggers.Config{RateLimit: 2})
	tests := []struct {
		name   string
		body   any
		status int
		want   string
	}{
		{"window", triggers.ManualRequest{Selector: `{service="api"}`, Reason: "r", BeforeS: 30, AfterS: 0.5}, 200, `"nodes":["n1"]`},
		{"not json", []byte("selector=x"), 400, "invalid character"},
		{"unknown field", []byte(`{"selector":"{}","reason":"r","before":60}`), 400, `unknown field \"before\"`},
		{"no reason", triggers.ManualRequest{Selector: `{service="api"}`}, 400, "no reason"},
		{"bad selector", triggers.ManualRequest{Selector: `{service=api}`, Reason: "r"}, 400, "selector"},
		{"no selector", triggers.ManualRequest{Reason: "r"}, 400, "selector"},
		{"long before", triggers.ManualRequest{Selector: `{service="api"}`, Reason: "r", BeforeS: 601}, 400, "before_s 601"},
		{"negative after", triggers.ManualRequest{Selector: `{service="api"}`, Reason: "r", AfterS: -1}, 400, "after_s -1"},
		{"second", triggers.ManualRequest{Selector: `{service="api"}`, Reason: "r"}, 200, `"outcome":"fired"`},
		{"rate limited", triggers.ManualRequest{Selector: `{service="api"}`, Reason: "r"}, 429, "rate limited: more than 2 triggers in 10m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, s.URL+triggers.ManualPath, tt.body)
			if status != tt.status || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %s, want %d with %q", status, body, tt.status, tt.want)
			}
		})
	}
	got := pending(t, s, "n1")
	if len(got) != 2 || got[0].BeforeS != 30 || got[0].AfterS != 0.5 {
		t.Errorf("queued %+v", got)
	}
	if count(t, s, "manual", "rate_limited") != 1 {
		t.Error("rate_limited not counted")
	}
}

func TestPollEndpoint(t *testing.T) {
	s := serve(t, stubResolver{`{service="api"}`: {"n1"}}, triggers.Config{})
	poll := func(q string) (int, string) {
		resp, err := http.Get(s.URL + triggers.PollPath + "?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := poll("node=n1&agent=a1&wait=50ms"); status != http.StatusNoContent || body != "" {
		t.Errorf("nothing pending: %d %q", status, body)
	}
	_, body := post(t, s.URL+triggers.ManualPath, triggers.ManualRequest{Selector: `{service="api"}`, Reason: "r"})
	var res triggers.Result
	json.Unmarshal(body, &res)
	status, polled := poll("node=n1&agent=a1&wait=30s")
	var got triggers.PollResponse
	if err := json.Unmarshal([]byte(polled), &got); err != nil || status != 200 || len(got.Triggers) != 1 || got.Triggers[0].ID != res.ID {
		t.Fatalf("pending: %d %s", status, polled)
	}
	if status, _ := poll("node=n1&wait=50ms&after=" + url.QueryEscape(res.ID)); status != http.StatusNoContent {
		t.Errorf("after the last id: %d", status)
	}
	for _, q := range []string{"agent=a1", "node=n1&wait=6m", "node=n1&wait=soon", "node=n1&after=nope", "node=n1&since=1", "node=n1&node=n2"} {
		if status, body := poll(q); status != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
}

// TestPollEndsOnShutdown checks that an open poll does not hold the
// server's graceful shutdown for its whole wait.
func TestPollEndsOnShutdown(t *testing.T) {
	svc := triggers.New(stubResolver{}, triggers.Config{})
	mux := http.NewServeMux()
	svc.Register(mux, nil)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(hs.URL + triggers.PollPath + "?node=n1&wait=60s")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for deadline := time.Now().Add(5 * time.Second); svc.Queue().Waiting() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the poll never started waiting")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := hs.Config.Shutdown(ctx); err != nil || time.Since(start) > 5*time.Second {
		t.Errorf("shutdown: %v after %v", err, time.Since(start))
	}
	if status := <-done; status != http.StatusNoContent {
		t.Errorf("poll answered %d, want 204", status)
	}
}
