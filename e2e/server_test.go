package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/internal/testenv"
	"github.com/flightrec/flightrec/internal/testworkload"
)

// serverProc is a running `flightrec server`.
type serverProc struct {
	*agentProc
	url  string
	data string
}

// startServer starts flightrec server on a free loopback port over data and
// waits until it answers /healthz.
func startServer(t *testing.T, data string, extra ...string) *serverProc {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"server", "--data", data, "--listen", addr, "--log-level", "warn"}, extra...)
	s := &serverProc{agentProc: startCmd(t, serverBin, args...), url: "http://" + addr, data: data}
	if !waitFor(30*time.Second, func() bool {
		code, _, err := httpGet(s.url + "/healthz")
		return err == nil && code == 200 || s.exited()
	}) || s.exited() {
		t.Fatalf("server did not come up: %s", s)
	}
	return s
}

// window is a query range around now wide enough for everything a test sent.
func window() (string, string) {
	now := time.Now()
	return fmt.Sprint(now.Add(-10 * time.Minute).Unix()), fmt.Sprint(now.Add(time.Minute).Unix())
}

func apiURL(s *serverProc, path, query string, extra ...string) string {
	from, to := window()
	v := url.Values{"from": {from}, "to": {to}}
	if query != "" {
		v.Set("query", query)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return s.url + path + "?" + v.Encode()
}

// fetchPprof merges query on the server and returns the pprof.
func fetchPprof(t *testing.T, s *serverProc, query string) *profile.Profile {
	t.Helper()
	resp, err := http.Get(apiURL(s, "/api/v1/pprof", query))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("pprof of %s: %d %s", query, resp.StatusCode, body)
	}
	p, err := profile.ParseData(body)
	if err != nil {
		t.Fatalf("parse pprof of %s: %v", query, err)
	}
	return p
}

func getJSON(t *testing.T, u string, into any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, body)
	}
}

func labelValues(t *testing.T, s *serverProc, name, query string) []string {
	t.Helper()
	var r struct{ Values []string }
	getJSON(t, apiURL(s, "/api/v1/labels/"+name+"/values", query), &r)
	return r.Values
}

// TestServerPyroscopeClient: the real pyroscope-go client pushes a program of
// known split; the merged pprof has that split, and selectors on the pushed
// tags and on TagWrapper's sample labels (two tenants, 2:1) work.
func TestServerPyroscopeClient(t *testing.T) {
	testenv.Short(t)
	srv := startServer(t, t.TempDir())
	bin := testworkload.Build(t, "pyrosplit")
	p := testworkload.Start(t, bin, "-server", srv.url, "-app", "pyrosplit", "-tags", "env=e2e,region=eu", "-duration", "15s", "-upload", "3s")
	if st, err := p.Wait(); err != nil || !st.Success() {
		t.Fatalf("pyrosplit: %v %v\n%s", st, err, p.Stderr())
	}
	if strings.Contains(p.Stderr(), "upload failed") || strings.Contains(p.Stderr(), "[ERROR]") {
		t.Errorf("pyroscope client logged errors:\n%s", p.Stderr())
	}
	all := fetchPprof(t, srv, `cpu{service_name="pyrosplit"}`)
	checkShares(t, all.Sample, testworkload.Split("pyrosplit"), 5)
	total := float64(weight(all.Sample))
	a := float64(weight(fetchPprof(t, srv, `cpu{service_name="pyrosplit",tenant="a"}`).Sample))
	b := float64(weight(fetchPprof(t, srv, `cpu{service_name="pyrosplit",tenant="b"}`).Sample))
	t.Logf("tenant a %.1f%%, b %.1f%% of %.0f ns", 100*a/total, 100*b/total, total)
	if share := 100 * a / total; math.Abs(share-66.7) > 5 {
		t.Errorf("tenant a has %.1f%% of the CPU, want 66.7 ± 5", share)
	}
	if share := 100 * b / total; math.Abs(share-33.3) > 5 {
		t.Errorf("tenant b has %.1f%% of the CPU, want 33.3 ± 5", share)
	}
	if tagged := float64(weight(fetchPprof(t, srv, `cpu{service="pyrosplit",env="e2e",region="eu"}`).Sample)); tagged != total {
		t.Errorf("selecting by the pushed tags gives %.0f ns, want all %.0f", tagged, total)
	}
}

// TestServerAgentQuery: the agent ships to the server on the real kernel and
// the workload's functions and split come back through `flightrec query`,
// `flightrec top` and `go tool pprof` against the HTTP API.
func TestServerAgentQuery(t *testing.T) {
	testenv.RequireBPF(t)
	srv := startServer(t, t.TempDir())
	w := testworkload.Start(t, testworkload.Build(t, "gosplit"))
	agent := startAgent(t, "run", "--server", srv.url, "--interval", "2s", "--frequency", "499", "--admin", "")
	time.Sleep(9 * time.Second)
	if code := agent.terminate(t, 15*time.Second); code != 0 {
		t.Fatalf("agent exited %d: %s", code, agent)
	}
	sel := fmt.Sprintf(`cpu{pid="%d"}`, w.Pid)

	out := filepath.Join(t.TempDir(), "q.pb.gz")
	q := startCmd(t, serverBin, "query", sel, "--server", srv.url, "--from", "-10m", "-o", out)
	if code := q.wait(t, time.Minute); code != 0 {
		t.Fatalf("flightrec query: %s", q)
	}
	p := readProfile(t, out)
	if weight(p.Sample) < 3000*int64(time.Second/499) {
		t.Logf("only %d ns of samples: shares are noisier", weight(p.Sample))
	}
	checkShares(t, p.Sample, testworkload.Split("gosplit"), 3)

	top := startCmd(t, serverBin, "top", sel, "--server", srv.url, "--from", "-10m", "--order", "total")
	if code := top.wait(t, time.Minute); code != 0 || !strings.Contains(top.stdout.String(), "main.cpuA") {
		t.Errorf("flightrec top: %s", top)
	}
	pp := exec.Command(goTool(), "tool", "pprof", "-top", apiURL(srv, "/api/v1/pprof", sel))
	pp.Env = append(os.Environ(), "PPROF_TMPDIR="+t.TempDir())
	if b, err := pp.CombinedOutput(); err != nil || !strings.Contains(string(b), "main.cpuA") {
		t.Errorf("go tool pprof -top against the API: %v\n%s", err, b)
	}
	if vs := labelValues(t, srv, "service", `cpu{}`); !slices.Contains(vs, "gosplit") {
		t.Errorf("service values %v lack gosplit", vs)
	}
}

// TestServerBadInputStoresNothing sends malformed uploads to the real server:
// each gets a 4xx naming the problem, nothing is stored, and the server keeps
// serving.
func TestServerBadInputStoresNothing(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--max-body-bytes", "1048576")
	good := cpuProfileBytes(t, 5)
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for i := 0; i < 300; i++ { // 300 MiB of zeros, ~300 KiB compressed
		zw.Write(zero)
	}
	zw.Close()
	big := make([]byte, 2<<20)
	tests := []struct {
		name, path, ctype string
		body              []byte
		want              int
		says              string
	}{
		{"malformed pprof", `/api/v1/ingest?labels={service="x"}`, "", []byte("not a profile"), 400, ""},
		{"truncated gzip", `/api/v1/ingest?labels={service="x"}`, "", good[:len(good)/2], 400, "gzip"},
		{"gzip bomb", `/api/v1/ingest?labels={service="x"}`, "", bomb.Bytes(), 413, "decompressed"},
		{"oversized body", `/api/v1/ingest?labels={service="x"}`, "", big, 413, ""},
		{"bad label name", `/api/v1/ingest?labels={bad-name="x"}`, "", good, 400, "label"},
		{"matcher in labels", `/api/v1/ingest?labels={service=~"x"}`, "", good, 400, ""},
		{"unknown parameter", `/api/v1/ingest?labels={service="x"}&colour=red`, "", good, 400, "colour"},
		{"malformed agent body", "/api/v1/ingest/agent", "", []byte{0x1f, 0x8b, 1, 2, 3}, 400, ""},
		{"malformed otlp", "/v1development/profiles", "application/x-protobuf", []byte{0xff, 0xff, 0xff}, 400, ""},
	}
	for _, tt := range tests {
		resp, err := http.Post(srv.url+tt.path, tt.ctype, bytes.NewReader(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || !strings.Contains(strings.ToLower(string(msg)), tt.says) {
			t.Errorf("%s: %d %s, want %d mentioning %q", tt.name, resp.StatusCode, msg, tt.want, tt.says)
		}
		if types := storedTypes(t, srv); len(types) != 0 {
			t.Fatalf("%s: the server stored %v", tt.name, types)
		}
	}
	resp, err := http.Post(srv.url+`/api/v1/ingest?labels={service="x"}`, "", bytes.NewReader(good))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("good upload after bad ones: %v %v", resp, err)
	}
	resp.Body.Close()
	if types := storedTypes(t, srv); !slices.Equal(types, []string{"cpu"}) {
		t.Errorf("after a good upload types = %v", types)
	}
}

func storedTypes(t *testing.T, s *serverProc) []string {
	var r struct{ Types []struct{ Name string } }
	getJSON(t, apiURL(s, "/api/v1/types", ""), &r)
	var out []string
	for _, ty := range r.Types {
		out = append(out, ty.Name)
	}
	return out
}

// cpuProfileBytes is a small gzipped CPU pprof: n samples on one stack.
func cpuProfileBytes(t *testing.T, n int64) []byte {
	t.Helper()
	fns := []*profile.Function{{ID: 1, Name: "main.work", Filename: "main.go"}, {ID: 2, Name: "main.main", Filename: "main.go"}}
	locs := []*profile.Location{{ID: 1, Line: []profile.Line{{Function: fns[0], Line: 3}}}, {ID: 2, Line: []profile.Line{{Function: fns[1], Line: 9}}}}
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10_000_000,
		TimeNanos:     time.Now().Add(-time.Minute).UnixNano(),
		DurationNanos: int64(10 * time.Second),
		Function:      fns,
		Location:      locs,
		Sample:        []*profile.Sample{{Location: locs, Value: []int64{n, n * 10_000_000}}},
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestServerCrashSafety kills the server with SIGKILL while clients upload;
// after a restart on the same data, every acknowledged upload is there and
// the store opens cleanly.
func TestServerCrashSafety(t *testing.T) {
	testenv.Short(t)
	data := t.TempDir()
	srv := startServer(t, data)
	body := cpuProfileBytes(t, 7)
	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			client := http.Client{Timeout: 5 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				seq := fmt.Sprintf("%d-%d", w, i)
				u := srv.url + "/api/v1/ingest?" + url.Values{"labels": {fmt.Sprintf(`{service="crash",seq="%s"}`, seq)}}.Encode()
				resp, err := client.Post(u, "", bytes.NewReader(body))
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[seq] = true
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(3 * time.Second)
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	cancel()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 20 {
		t.Fatalf("only %d uploads acknowledged before the kill: the test proves little", n)
	}

	restarted := startServer(t, data)
	present := map[string]bool{}
	for _, v := range labelValues(t, restarted, "seq", `cpu{service="crash"}`) {
		present[v] = true
	}
	var missing []string
	for seq := range acked {
		if !present[seq] {
			missing = append(missing, seq)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged uploads lost after kill -9, e.g. %v", len(missing), n, missing[:min(5, len(missing))])
	}
	// Each upload holds 7 samples of 10 ms; nothing may be stored twice or half.
	total := weight(fetchPprof(t, restarted, `cpu{service="crash"}`).Sample)
	if want := int64(len(present)) * 7 * 10_000_000; total != want {
		t.Errorf("total after restart %d ns, want %d for %d stored uploads", total, want, len(present))
	}
	t.Logf("%d uploads acknowledged, %d stored (the rest were in flight at the kill)", n, len(present))
}

// TestServerAuth: with a token file, ingest and read need their tokens (401
// without, 403 with the other kind), for HTTP clients and the CLI.
func TestServerAuth(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("ingest ingest-token-0123456789\nread read-token-0123456789\n"), 0o600)
	readTok := filepath.Join(dir, "read")
	os.WriteFile(readTok, []byte("read-token-0123456789\n"), 0o600)
	srv := startServer(t, filepath.Join(dir, "data"), "--auth-token-file", tokens)
	do := func(method, path, tok string, body []byte) int {
		req, _ := http.NewRequest(method, srv.url+path, bytes.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ingest := `/api/v1/ingest?labels={service="auth"}`
	body := cpuProfileBytes(t, 3)
	checks := []struct {
		name       string
		method     string
		path, tok  string
		body       []byte
		wantStatus int
	}{
		{"ingest without token", "POST", ingest, "", body, 401},
		{"ingest with read token", "POST", ingest, "read-token-0123456789", body, 403},
		{"ingest with ingest token", "POST", ingest, "ingest-token-0123456789", body, 200},
		{"read without token", "GET", "/api/v1/types", "", nil, 401},
		{"read with ingest token", "GET", "/api/v1/types", "ingest-token-0123456789", nil, 403},
		{"read with read token", "GET", "/api/v1/types", "read-token-0123456789", nil, 200},
		{"health needs no token", "GET", "/healthz", "", nil, 200},
	}
	for _, c := range checks {
		if got := do(c.method, c.path, c.tok, c.body); got != c.wantStatus {
			t.Errorf("%s: %d, want %d", c.name, got, c.wantStatus)
		}
	}
	cli := startCmd(t, serverBin, "labels", "service", "--server", srv.url, "--token-file", readTok, "--from", "-10m")
	if code := cli.wait(t, time.Minute); code != 0 || !strings.Contains(cli.stdout.String(), "auth") {
		t.Errorf("flightrec labels with the read token: %s", cli)
	}
	noTok := startCmd(t, serverBin, "labels", "--server", srv.url)
	if code := noTok.wait(t, time.Minute); code != 1 || !strings.Contains(noTok.stderr.String(), "401") {
		t.Errorf("flightrec labels without a token: %s", noTok)
	}
}
