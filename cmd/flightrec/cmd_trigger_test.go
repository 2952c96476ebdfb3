package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flightrec/flightrec/server"
	"github.com/flightrec/flightrec/server/auth"
	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/snapshots/snaptest"
	"github.com/flightrec/flightrec/server/triggers"
)

// nodesOf resolves {service="api"} to n1 and n2, everything else to none.
type nodesOf map[string][]string

func (r nodesOf) Nodes(_ context.Context, sel query.Selector, _, _ time.Time) ([]string, error) {
	return r[sel.String()], nil
}

func triggerServer(t *testing.T, cfg triggers.Config) (string, *triggers.Service) {
	t.Helper()
	svc := triggers.New(nodesOf{`{service="api"}`: {"n1", "n2"}}, cfg)
	mux := http.NewServeMux()
	svc.Register(mux, nil)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL, svc
}

func TestTriggerCommand(t *testing.T) {
	url, svc := triggerServer(t, triggers.Config{})
	// n1's agent polls: only n2 is reported as not polling.
	svc.Queue().Wait(context.Background(), "n1", "", 0)
	code, stdout, stderr := runCLI(t, "trigger", "--server", url, "--selector", `{service="api"}`, "--reason", "checkout slow", "--before", "30s", "--after", "5s")
	if code != 0 || !regexp.MustCompile(`^trigger t-[0-9]+-1 sent to n1, n2\n$`).MatchString(stdout) ||
		!strings.Contains(stderr, "warning: no agent of n2 polled the server lately") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	got, _ := svc.Queue().Wait(context.Background(), "n2", "", 0)
	if len(got) != 1 || got[0].Reason != "checkout slow" || got[0].BeforeS != 30 || got[0].AfterS != 5 || got[0].Selector != `{service="api"}` {
		t.Errorf("queued %+v", got)
	}
}

func TestTriggerExitCodes(t *testing.T) {
	url, _ := triggerServer(t, triggers.Config{RateLimit: 1})
	srv := "--server=" + url
	api := []string{"--selector", `{service="api"}`, "--reason", "r"}
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{srv, "--reason", "r"}, 2, "missing --selector"},
		{[]string{srv, "--selector", "{}"}, 2, "missing --reason"},
		{[]string{srv, "--selector", "{a=}", "--reason", "r"}, 2, "--selector: invalid selector"},
		{append([]string{srv, "--before", "11m"}, api...), 2, "--before 11m0s: want a duration from 1ms to 10m"},
		{append([]string{srv, "--after", "0s"}, api...), 2, "--after 0s"},
		{append([]string{srv, "extra"}, api...), 2, `unexpected argument "extra"`},
		{[]string{srv, "--selector", `{service="web"}`, "--reason", "r"}, 1, "no snapshot: no_nodes: no node has profiles matching {service=\"web\"}"},
		{append([]string{srv}, api...), 0, ""},
		{append([]string{srv}, api...), 1, "POST /api/v1/triggers: 429 Too Many Requests: rate limited"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(t, append([]string{"trigger"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.msg)
			}
		})
	}
}

func TestTriggerConfigFlags(t *testing.T) {
	tc, err := triggerConfig("job=service,node", 5*time.Minute, "3/1m")
	if err != nil || len(tc.AlertLabels) != 2 || tc.AlertLabels[0] != (triggers.LabelMapping{From: "job", To: "service"}) ||
		tc.RateLimit != 3 || tc.RateWindow != time.Minute || tc.AlertCooldown != 5*time.Minute {
		t.Errorf("%+v, %v", tc, err)
	}
	for _, bad := range [][3]string{{"", "1m", "1/1m"}, {"a", "1m", "x/1m"}, {"a", "1m", "1/"}, {"a", "0s", "1/1m"}} {
		d, _ := time.ParseDuration(bad[1])
		if _, err := triggerConfig(bad[0], d, bad[2]); !isUsage(err) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

// TestServerWiring runs the real server with tokens: the snapshot and
// trigger endpoints sit behind the scopes docs/api.md gives, next to the
// query API, and an open agent poll does not hold up shutdown.
func TestServerWiring(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "tokens")
	const ingest, read = "ingest-token-0123456789", "read-token-0123456789"
	os.WriteFile(tokenFile, []byte("ingest "+ingest+"\nread "+read+"\n"), 0o600)
	tokens, err := auth.Load(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Config{DataDir: filepath.Join(dir, "data"), Tokens: tokens, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	snap := snaptest.Encode(t, snaptest.Snapshot("s1", time.Now().Add(-time.Minute)))
	bad := []byte(`{"version":"3"}`)
	manual := []byte(`{"selector":"{service=\"api\"}","reason":"r"}`)
	tests := []struct {
		method, path, token string
		body                []byte
		status              int
	}{
		{"POST", "/api/v1/snapshots", read, snap, 403},
		{"POST", "/api/v1/snapshots", ingest, snap, 201},
		{"GET", "/api/v1/snapshots", ingest, nil, 403},
		{"GET", "/api/v1/snapshots?query={service=\"db\"}", read, nil, 200},
		{"GET", "/api/v1/snapshots/s1/timeline", read, nil, 200},
		{"GET", "/api/v1/snapshots/s1/nope", read, nil, 404},
		{"POST", "/api/v1/triggers", read, manual, 403},
		{"POST", "/api/v1/triggers", ingest, manual, 200},
		{"GET", "/api/v1/agent/triggers?node=n1&wait=0s", read, nil, 403},
		{"GET", "/api/v1/agent/triggers?node=n1&wait=0s", ingest, nil, 204},
		{"POST", "/api/v1/alertmanager", ingest, bad, 400},
		{"POST", "/api/v1/alertmanager", "", bad, 401},
		{"GET", "/api/v1/types", read, nil, 200}, // the query API is still there
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+tt.path, bytes.NewReader(tt.body))
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || (tt.status != 204 && !json.Valid(body)) {
			t.Errorf("%s %s as %q: %d %s, want %d", tt.method, tt.path, tt.token, resp.StatusCode, body, tt.status)
		}
	}

	polled := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/api/v1/agent/triggers?node=n9&wait=60s", nil)
		req.Header.Set("Authorization", "Bearer "+ingest)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			polled <- resp.StatusCode
		}
		close(polled)
	}()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(httpGet(t, base+"/metrics"), "flightrec_trigger_polls 1"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the poll never started waiting")
		}
	}
	start := time.Now()
	stop()
	if err := <-served; err != nil || time.Since(start) > 5*time.Second {
		t.Errorf("serve: %v, shutdown took %v", err, time.Since(start))
	}
	if status := <-polled; status != http.StatusNoContent {
		t.Errorf("open poll at shutdown: %d, want 204", status)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
