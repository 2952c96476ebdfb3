package snapshots_test

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/auth"
	"github.com/flightrec/flightrec/server/snapshots"
	"github.com/flightrec/flightrec/server/snapshots/snaptest"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// start is the snapshot's window start: an hour ago, so that list times
// relative to now work.
var start = time.Now().Add(-time.Hour).Truncate(time.Second)

const ms = int64(time.Millisecond)

type server struct {
	URL   string
	Dir   string
	Store *snapshots.Store
}

// serve runs the snapshot API over a store in a temporary directory.
func serve(t *testing.T, cfg snapshots.Config) *server {
	t.Helper()
	cfg.Dir = t.TempDir()
	cfg.Registerer = prometheus.NewRegistry()
	mux := http.NewServeMux()
	st, err := snapshots.Register(mux, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &server{URL: hs.URL, Dir: cfg.Dir, Store: st}
}

// do sends a request, without Go's transparent gunzipping, and returns
// status, body and headers.
func do(t *testing.T, method, url string, body []byte, header map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

func upload(t *testing.T, s *server, body []byte) (int, string) {
	t.Helper()
	status, b, _ := do(t, http.MethodPost, s.URL+snapshots.Path, body, map[string]string{"Content-Encoding": "gzip"})
	return status, string(b)
}

// getJSON GETs path and decodes a 200 answer into v.
func getJSON(t *testing.T, s *server, path string, v any) {
	t.Helper()
	status, body, h := do(t, http.MethodGet, s.URL+path, nil, nil)
	if status != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s\n%s", path, status, h.Get("Content-Type"), body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

// withSnapshot serves the snaptest snapshot, stored as "s1".
func withSnapshot(t *testing.T) *server {
	t.Helper()
	s := serve(t, snapshots.Config{})
	if status, body := upload(t, s, snaptest.Encode(t, snaptest.Snapshot("s1", start))); status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, body)
	}
	return s
}

func TestUploadDownloadList(t *testing.T) {
	s := serve(t, snapshots.Config{})
	body := snaptest.Encode(t, snaptest.Snapshot("n1-1-ab", start))
	for i, want := range []struct {
		status    int
		duplicate bool
	}{{http.StatusCreated, false}, {http.StatusOK, true}} {
		status, b := upload(t, s, body)
		var res snapshots.PutResponse
		json.Unmarshal([]byte(b), &res)
		if status != want.status || res.ID != "n1-1-ab" || res.Duplicate != want.duplicate || res.Size != int64(len(body)) {
			t.Errorf("upload %d: %d %s, want %d duplicate %v", i+1, status, b, want.status, want.duplicate)
		}
	}
	status, got, h := do(t, http.MethodGet, s.URL+snapshots.Path+"/n1-1-ab", nil, nil)
	if status != http.StatusOK || !bytes.Equal(got, body) || h.Get("Content-Encoding") != "gzip" || h.Get("Content-Type") != "application/json" {
		t.Errorf("download: %d, %d bytes (want the %d uploaded), headers %v", status, len(got), len(body), h)
	}
	if status, _, _ := do(t, http.MethodGet, s.URL+snapshots.Path+"/nope", nil, nil); status != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", status)
	}

	var list snapshots.ListResponse
	getJSON(t, s, snapshots.Path+`?query={service="api"}&from=-2h&limit=5`, &list)
	if list.Total != 1 || len(list.Snapshots) != 1 {
		t.Fatalf("list: %+v", list)
	}
	if got := list.Snapshots[0]; got.Node != "n1" || got.Processes != 2 || got.Trigger.Reason != "APIErrorBudgetBurn" ||
		got.StartNS != start.UnixNano() || got.Size != int64(len(body)) {
		t.Errorf("listed: %+v", got)
	}
	for _, q := range []string{`query={service="nope"}`, "from=-10m", "to=-2h"} {
		getJSON(t, s, snapshots.Path+"?"+q, &list)
		if list.Total != 0 || list.Snapshots == nil {
			t.Errorf("%s: %+v, want an empty list", q, list)
		}
	}
	for _, q := range []string{"query=cpu{}", "query={", "limit=0", "from=yesterday", "selector={}"} {
		if status, b, _ := do(t, http.MethodGet, s.URL+snapshots.Path+"?"+q, nil, nil); status != http.StatusBadRequest || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s: %d %s, want a 400 JSON error", q, status, b)
		}
	}
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// mutated is the test snapshot's JSON after f edits its generic form.
func mutated(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	b, _ := json.Marshal(snaptest.Snapshot("bad", start))
	var m map[string]any
	json.Unmarshal(b, &m)
	f(m)
	out, _ := json.Marshal(m)
	return gz(t, out)
}

func TestBadUploads(t *testing.T) {
	s := serve(t, snapshots.Config{Limits: snapshot.Limits{MaxCompressed: 64 << 10, MaxDecompressed: 1 << 20}})
	good, _ := json.Marshal(snaptest.Snapshot("bad", start))
	random := make([]byte, 100<<10)
	rand.Read(random)
	// A bomb: a valid start, then 2 MiB of spaces that compress to ~2 KiB.
	bomb := gz(t, append(good[:len(good)-1], append(bytes.Repeat([]byte(" "), 2<<20), '}')...))
	tests := []struct {
		name   string
		body   []byte
		header map[string]string
		status int
		want   string
	}{
		{"malformed", gz(t, []byte(`{"version":1,`)), nil, 400, "malformed snapshot"},
		{"truncated gzip", gz(t, good)[:200], nil, 400, "malformed snapshot"},
		{"empty", nil, nil, 400, "empty body"},
		{"bomb", bomb, nil, 413, "decompressed body exceeds 1048576 bytes"},
		{"oversized", random, nil, 413, "limit 65536"},
		{"unknown field", mutated(t, func(m map[string]any) { m["color"] = "red" }), nil, 400, `unknown field "color"`},
		{"dangling frame", mutated(t, func(m map[string]any) { m["stacks"] = [][]int{{99}} }), nil, 400, "refers to frame 99"},
		{"dangling stack", mutated(t, func(m map[string]any) { m["samples"].(map[string]any)["stack"] = []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 7} }), nil, 400, "sample 9 refers to stack 7"},
		{"short column", mutated(t, func(m map[string]any) { m["samples"].(map[string]any)["cpu"] = []int{0} }), nil, 400, "sample columns differ in length"},
		{"version", mutated(t, func(m map[string]any) { m["version"] = 2 }), nil, 400, "version 2"},
		{"bad id", mutated(t, func(m map[string]any) { m["id"] = "../etc" }), nil, 400, "id"},
		{"encoding", gz(t, good), map[string]string{"Content-Encoding": "br"}, 415, `Content-Encoding "br"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"Content-Encoding": "gzip"}
			for k, v := range tt.header {
				h[k] = v
			}
			status, body, _ := do(t, http.MethodPost, s.URL+snapshots.Path, tt.body, h)
			var e snapshots.ErrorResponse
			if err := json.Unmarshal(body, &e); err != nil || status != tt.status || !strings.Contains(e.Error, tt.want) {
				t.Errorf("%d %s, want %d with %q", status, body, tt.status, tt.want)
			}
		})
	}
	if status, body, _ := do(t, http.MethodPost, s.URL+snapshots.Path+"?force=1", gz(t, good), nil); status != 400 {
		t.Errorf("unknown parameter: %d %s", status, body)
	}
	// Nothing of any of them was stored.
	if n, _ := s.Store.Stats(); n != 0 {
		t.Errorf("%d snapshots stored", n)
	}
	entries, _ := os.ReadDir(s.Dir)
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

func TestTimeline(t *testing.T) {
	s := withSnapshot(t)
	var tl snapshots.Timeline
	getJSON(t, s, snapshots.Path+"/s1/timeline?step=100ms", &tl)
	if tl.Steps != 20 || tl.StepNS != 100*ms || tl.StartNS != start.UnixNano() || tl.PeriodNS != snaptest.Period || len(tl.Processes) != 2 {
		t.Fatalf("timeline: %d steps of %d, start %d, period %d, %d processes", tl.Steps, tl.StepNS, tl.StartNS, tl.PeriodNS, len(tl.Processes))
	}
	p := tl.Processes[0] // most CPU first
	steps := func(kv ...int64) []int64 {
		out := make([]int64, 20)
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"pid", p.PID, uint32(100)},
		{"labels", p.Labels["pod"], "api-1"},
		{"samples", p.Samples, steps(0, 1, 1, 1, 2, 1, 3, 1, 10, 2, 11, 1, 12, 1, 13, 1)},
		{"cpu_ns", p.CPUNS, steps(0, 10*ms, 1, 10*ms, 2, 10*ms, 3, 10*ms, 10, 20*ms, 11, 10*ms, 12, 10*ms, 13, 10*ms)},
		{"blocked", p.OffCPUNS["blocked"], steps(4, 100*ms, 5, 100*ms, 6, 50*ms)},
		{"sleep", p.OffCPUNS["sleep"], steps(19, 100*ms)}, // cut at the window's end
		{"states", len(p.OffCPUNS), 2},
		{"total", p.Total, snapshots.Totals{Samples: 9, CPUNS: 90 * ms, OffCPUNS: map[string]int64{"blocked": 250 * ms, "sleep": 100 * ms}}},
		{"threads", len(p.Threads), 2},
		{"thread 101", [2]any{p.Threads[0].TID, p.Threads[0].Total.CPUNS}, [2]any{uint32(101), 80 * ms}},
		{"thread 102", [2]any{p.Threads[1].TID, p.Threads[1].Samples}, [2]any{uint32(102), steps(10, 1)}},
		{"pid 200", [3]any{tl.Processes[1].PID, tl.Processes[1].Samples, tl.Processes[1].OffCPUNS["preempted"]},
			[3]any{uint32(200), steps(0, 1), steps(0, 50*ms)}},
		{"events", len(tl.Events), 3},
		{"signal", [3]any{tl.Events[1].Kind, tl.Events[1].Signal, tl.Events[1].Frames}, [3]any{"signal", 11, []string{"main.parse", "main.handle", "main.main"}}},
		{"stats", tl.Stats.UnknownStacks, uint64(1)},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}

	getJSON(t, s, snapshots.Path+"/s1/timeline?pid=200&step=1s", &tl)
	if len(tl.Processes) != 1 || tl.Steps != 2 || fmt.Sprint(tl.Processes[0].CPUNS) != fmt.Sprint([]int64{10 * ms, 0}) ||
		len(tl.Events) != 1 || tl.Events[0].Kind != "exec" {
		t.Errorf("pid 200: %+v", tl)
	}
	for _, q := range []string{"step=1us", "step=0s", "pid=x", "tid=1"} {
		if status, _, _ := do(t, http.MethodGet, s.URL+snapshots.Path+"/s1/timeline?"+q, nil, nil); status != 400 {
			t.Errorf("%s: %d, want 400", q, status)
		}
	}
	if status, _, _ := do(t, http.MethodGet, s.URL+snapshots.Path+"/s2/timeline", nil, nil); status != 404 {
		t.Errorf("unknown snapshot: %d, want 404", status)
	}
}

func TestPprof(t *testing.T) {
	s := withSnapshot(t)
	abs := func(offset int64) string { return strconv.FormatInt(start.UnixNano()+offset, 10) }
	tests := []struct {
		query string
		total int64
		self  map[string]int64 // leaf function → value
	}{
		{"", 100 * ms, map[string]int64{"main.parse": 40 * ms, "runtime.mallocgc": 50 * ms, "": 10 * ms}},
		{"type=cpu&from=%2B0s", 50 * ms, map[string]int64{"main.parse": 10 * ms, "runtime.mallocgc": 40 * ms}},
		{"from=-1s&to=%2B0s", 50 * ms, map[string]int64{"main.parse": 30 * ms, "runtime.mallocgc": 10 * ms, "": 10 * ms}},
		{"pid=100&tid=102", 10 * ms, map[string]int64{"runtime.mallocgc": 10 * ms}},
		{"type=off_cpu", 400 * ms, map[string]int64{"syscall.read": 250 * ms, "[unknown stack]": 100 * ms, "": 50 * ms}},
		{"type=off_cpu&pid=100", 350 * ms, nil},
		{"type=off_cpu&from=%2B0s&to=%2B950ms", 50 * ms, nil},
		{"type=off_cpu&from=" + abs(450*ms) + "&to=" + abs(500*ms), 50 * ms, map[string]int64{"syscall.read": 50 * ms}},
		{"pid=300", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, body, h := do(t, http.MethodGet, s.URL+snapshots.Path+"/s1/pprof?"+tt.query, nil, nil)
			if status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			p, err := profile.ParseData(body)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.CheckValid(); err != nil {
				t.Fatal(err)
			}
			total, self := int64(0), map[string]int64{}
			for _, smp := range p.Sample {
				total += smp.Value[0]
				leaf := ""
				if l := smp.Location[0].Line; len(l) > 0 {
					leaf = l[0].Function.Name
				}
				self[leaf] += smp.Value[0]
			}
			if total != tt.total || (tt.self != nil && fmt.Sprint(self) != fmt.Sprint(tt.self)) {
				t.Errorf("total %d, self %v; want %d, %v", total, self, tt.total, tt.self)
			}
			if (total == 0) != (h.Get(api.MessageHeader) != "") {
				t.Errorf("message %q for total %d", h.Get(api.MessageHeader), total)
			}
		})
	}
	for _, q := range []string{"type=heap", "from=%2B3s&to=%2B1s", "from=abc", "pid=-1", "seconds=30"} {
		if status, body, _ := do(t, http.MethodGet, s.URL+snapshots.Path+"/s1/pprof?"+q, nil, nil); status != 400 {
			t.Errorf("%s: %d %s, want 400", q, status, body)
		}
	}
}

func TestFlamegraph(t *testing.T) {
	s := withSnapshot(t)
	var fg api.FlamegraphResponse
	getJSON(t, s, snapshots.Path+"/s1/flamegraph?type=off_cpu", &fg)
	if fg.Total != 400*ms || fg.Type != "off_cpu" || fg.Unit != "nanoseconds" {
		t.Fatalf("off-CPU flamegraph: total %d, type %s", fg.Total, fg.Type)
	}
	totals := map[string]int64{}
	for i, name := range fg.Nodes.Name {
		totals[fg.Names[name]] += fg.Nodes.Total[i]
	}
	if totals["[unknown stack]"] != 100*ms || totals["syscall.read"] != 250*ms || totals["main.main"] != 300*ms {
		t.Errorf("node totals %v", totals)
	}
	getJSON(t, s, snapshots.Path+"/s1/flamegraph?from=-1s&to=%2B0s&max_nodes=2", &fg)
	if fg.Total != 50*ms || !fg.Truncated || len(fg.Nodes.Name) > 2 {
		t.Errorf("truncated: total %d, truncated %v, %d nodes", fg.Total, fg.Truncated, len(fg.Nodes.Name))
	}
}

func TestCompare(t *testing.T) {
	s := withSnapshot(t)
	type row struct {
		name                  string
		before, after, change float64
	}
	tests := []struct {
		query        string
		beforeTotal  int64
		afterTotal   int64
		want         []row
		wantMessage  string
		beforeFromNS int64
	}{
		{"before=1s&after=1s", 50 * ms, 50 * ms, []row{
			{"runtime.mallocgc", 20, 80, 60}, {"main.parse", 60, 20, -40}, {"libc.so.6+0x9a3f0", 20, 0, -20},
			{"main.handle", 0, 0, 0}, {"main.main", 0, 0, 0}}, "", 0},
		{"by=total&limit=4", 50 * ms, 50 * ms, []row{ // 10s each way: cut to the window
			{"runtime.mallocgc", 20, 80, 60}, {"main.parse", 60, 20, -40}, {"libc.so.6+0x9a3f0", 20, 0, -20},
			{"main.handle", 80, 100, 20}}, "", 0},
		{"before=500ms&after=500ms", 0, 50 * ms, nil, "nothing before the trigger", 500 * ms},
		{"pid=100&tid=102", 0, 10 * ms, []row{
			{"runtime.mallocgc", 0, 100, 100}, {"main.handle", 0, 0, 0}, {"main.main", 0, 0, 0}}, "nothing before", 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var c snapshots.Comparison
			getJSON(t, s, snapshots.Path+"/s1/compare?"+tt.query, &c)
			if c.Before.Total != tt.beforeTotal || c.After.Total != tt.afterTotal || c.TriggerNS != start.UnixNano()+1000*ms ||
				c.Before.FromNS != start.UnixNano()+tt.beforeFromNS || !strings.Contains(c.Message, tt.wantMessage) {
				t.Fatalf("spans %+v %+v, trigger %d, message %q", c.Before, c.After, c.TriggerNS, c.Message)
			}
			if tt.want == nil {
				return
			}
			var got []row
			for _, f := range c.Functions {
				got = append(got, row{f.Name, f.BeforeShare, f.AfterShare, f.Delta})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v\nwant %v", got, tt.want)
			}
		})
	}
	for _, q := range []string{"before=-1s", "by=flat", "limit=0", "from=-1s"} {
		if status, _, _ := do(t, http.MethodGet, s.URL+snapshots.Path+"/s1/compare?"+q, nil, nil); status != 400 {
			t.Errorf("%s: %d, want 400", q, status)
		}
	}
}

func TestScopes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(file, []byte("ingest ingest-token-0123456789\nread read-token-0123456789\n"), 0o600)
	tokens, err := auth.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, snapshots.Config{Tokens: tokens})
	body := snaptest.Encode(t, snaptest.Snapshot("s1", start))
	tests := []struct {
		method, path, token string
		status              int
	}{
		{"POST", snapshots.Path, "", 401},
		{"POST", snapshots.Path, "read-token-0123456789", 403},
		{"POST", snapshots.Path, "ingest-token-0123456789", 201},
		{"GET", snapshots.Path, "ingest-token-0123456789", 403},
		{"GET", snapshots.Path, "read-token-0123456789", 200},
		{"GET", snapshots.Path + "/s1/timeline", "read-token-0123456789", 200},
	}
	for _, tt := range tests {
		status, b, _ := do(t, tt.method, s.URL+tt.path, body, map[string]string{"Authorization": "Bearer " + tt.token})
		if status != tt.status {
			t.Errorf("%s %s with %q: %d %s, want %d", tt.method, tt.path, tt.token, status, b, tt.status)
		}
	}
}
