package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/api/apitest"
)

// get fetches path with params and returns status, body and headers.
func get(t *testing.T, s *apitest.Server, path string, params url.Values) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(s.URL + path + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}

// getJSON fetches and decodes a 200 answer into v.
func getJSON(t *testing.T, s *apitest.Server, path string, params url.Values, v any) {
	t.Helper()
	status, body, h := get(t, s, path, params)
	if status != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s?%s: %d %s\n%s", path, params.Encode(), status, h.Get("Content-Type"), body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v\n%s", path, err, body)
	}
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

const ms = int64(time.Millisecond)

func TestPprof(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	status, body, h := get(t, s, api.PprofPath, q("query", `cpu{service="api"}`, "from", "-1h", "seconds", "30"))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	if h.Get("Content-Type") != "application/octet-stream" || !strings.Contains(h.Get("Content-Disposition"), "profile.pb.gz") {
		t.Errorf("headers %v", h)
	}
	p, err := profile.ParseData(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if st := p.SampleType[0]; st.Type != "cpu" || st.Unit != "nanoseconds" {
		t.Errorf("sample type %v", st)
	}
	if p.TimeNanos != s.Now.Add(-time.Hour).UnixNano() || p.DurationNanos != int64(time.Hour) {
		t.Errorf("time %v duration %v, want the last hour", time.Unix(0, p.TimeNanos), time.Duration(p.DurationNanos))
	}
	var total int64
	self := map[string]int64{}
	for _, smp := range p.Sample {
		total += smp.Value[0]
		if lines := smp.Location[0].Line; len(lines) > 0 {
			self[lines[0].Function.Name] += smp.Value[0]
			if lines[0].Function.Name == "main.parse" && (len(lines) != 2 || lines[1].Function.Name != "main.handle") {
				t.Errorf("main.parse is not inlined into main.handle's location: %v", lines)
			}
		} else if smp.Location[0].Address != 0x9a3f0 {
			t.Errorf("unsymbolized leaf at %#x, want 0x9a3f0", smp.Location[0].Address)
		}
	}
	if total != 280*ms || self["main.parse"] != 150*ms || self["main.handle"] != 40*ms {
		t.Errorf("total %d, self %v; want 280ms, main.parse 150ms, main.handle 40ms", total, self)
	}
}

// TestGoToolPprof runs the real pprof against the endpoint, as users do.
func TestGoToolPprof(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go tool pprof")
	}
	s := apitest.Start(t, api.Options{})
	u := s.URL + api.PprofPath + "?" + q("query", `cpu{service="api"}`, "from", "-1h").Encode()
	cmd := exec.Command("go", "tool", "pprof", "-top", u)
	cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top %s: %v\n%s", u, err, out)
	}
	t.Logf("%s", out)
	for _, want := range []string{"main.parse", "main.handle", "runtime.mallocgc", "280ms total"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pprof -top output lacks %q:\n%s", want, out)
		}
	}
}

func TestFlamegraph(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	var fg api.FlamegraphResponse
	getJSON(t, s, api.FlamegraphPath, q("query", `{service="api"}`), &fg)
	if fg.Type != "cpu" || fg.Unit != "nanoseconds" || fg.Total != 280*ms || fg.Message != "" {
		t.Fatalf("type %q unit %q total %d message %q", fg.Type, fg.Unit, fg.Total, fg.Message)
	}
	var got []string
	n := fg.Nodes
	path := make([]string, len(n.Name))
	for i := range n.Name {
		path[i] = fg.Names[n.Name[i]]
		if p := n.Parent[i]; p >= 0 {
			path[i] = path[p] + ";" + path[i]
		}
		got = append(got, path[i]+" "+itoa(n.Self[i]/ms)+"/"+itoa(n.Total[i]/ms))
	}
	want := []string{
		"total 0/280",
		"total;main.main 0/280",
		"total;main.main;main.handle 40/280",
		"total;main.main;main.handle;libc.so.6+0x9a3f0 30/30",
		"total;main.main;main.handle;main.parse 150/150",
		"total;main.main;main.handle;runtime.mallocgc 60/60",
	}
	if !slices.Equal(got, want) {
		t.Errorf("nodes (self/total ms)\n got %q\nwant %q", got, want)
	}
	getJSON(t, s, api.FlamegraphPath, q("query", `{service="api"}`, "max_nodes", "3"), &fg)
	if len(fg.Nodes.Name) != 3 || !fg.Truncated || fg.Total != 280*ms {
		t.Errorf("max_nodes=3: %d nodes, truncated %v, total %d", len(fg.Nodes.Name), fg.Truncated, fg.Total)
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

func TestTop(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	tests := []struct {
		params url.Values
		want   []string // name self/total in ms
	}{
		{q("query", `cpu{service="api"}`), []string{"main.parse 150/150", "runtime.mallocgc 60/60", "main.handle 40/280", "libc.so.6+0x9a3f0 30/30", "main.main 0/280"}},
		{q("query", `cpu{service="api"}`, "order", "total", "limit", "2"), []string{"main.handle 40/280", "main.main 0/280"}},
		{q("query", `{service="api",version=~"1\\.8\\..*",node!="n3"}`, "limit", "1"), []string{"main.parse 150/150"}},
		{q("type", "alloc_space", "limit", "1"), []string{"runtime.mallocgc 0/0"}}, // 1024 bytes: < 1ms
	}
	for _, tt := range tests {
		t.Run(tt.params.Encode(), func(t *testing.T) {
			var top api.TopResponse
			getJSON(t, s, api.TopPath, tt.params, &top)
			var got []string
			for _, f := range top.Functions {
				got = append(got, f.Name+" "+itoa(f.Self/ms)+"/"+itoa(f.Total/ms))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("functions\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	var top api.TopResponse
	getJSON(t, s, api.TopPath, q("query", "alloc_space"), &top)
	if top.Total != 1024 || top.Unit != "bytes" || top.Count != 3 || top.Functions[0] != (top.Functions[0]) {
		t.Errorf("alloc_space top %+v: want total 1024 bytes over 3 functions", top)
	}
	getJSON(t, s, api.TopPath, q("query", `cpu`), &top)
	if top.Total != 380*ms {
		t.Errorf("all cpu total %d, want 380ms", top.Total)
	}
}

func TestSeries(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	base := s.Base.UnixMilli()
	var resp api.SeriesResponse
	getJSON(t, s, api.SeriesPath, q("query", `cpu{service="api"}`, "from", formatMS(base), "to", formatMS(base+60_000), "step", "10s"), &resp)
	if resp.Step != 10_000 || resp.From != base || resp.Unit != "nanoseconds" || len(resp.Series) != 2 {
		t.Fatalf("response %+v", resp)
	}
	n1, n3 := resp.Series[0], resp.Series[1]
	if n1.Labels["node"] != "n1" || n1.Labels["version"] != "1.8.2" || n3.Labels["node"] != "n3" {
		t.Errorf("series labels %v, %v", n1.Labels, n3.Labels)
	}
	want := [][2]int64{{base, 80 * ms}, {base + 10_000, 80 * ms}, {base + 20_000, 80 * ms}}
	if !slices.Equal(n1.Points, want) || !slices.Equal(n3.Points, [][2]int64{{base, 40 * ms}}) {
		t.Errorf("points %v, %v; want %v and [[%d, 40ms]]", n1.Points, n3.Points, want, base)
	}

	// Steps are aligned to multiples of the step: from=base+5s starts at base.
	resp = api.SeriesResponse{} // Unmarshal would merge label maps into the old ones
	getJSON(t, s, api.SeriesPath, q("query", `cpu{node="n3"}`, "from", formatMS(base+5_000), "to", formatMS(base+60_000), "step", "10s"), &resp)
	if resp.From != base || len(resp.Series) != 1 || !slices.Equal(resp.Series[0].Points, [][2]int64{{base, 40 * ms}}) {
		t.Errorf("series from base+5s: %+v, want the step at base", resp)
	}

	resp = api.SeriesResponse{}
	getJSON(t, s, api.SeriesPath, q("query", `cpu`, "from", formatMS(base), "to", formatMS(base+60_000), "step", "1m", "by", "service"), &resp)
	got := map[string][][2]int64{}
	for _, sr := range resp.Series {
		if len(sr.Labels) != 1 {
			t.Errorf("grouped series has labels %v, want service only", sr.Labels)
		}
		got[sr.Labels["service"]] = sr.Points
	}
	if !slices.Equal(got["api"], [][2]int64{{base, 280 * ms}}) || !slices.Equal(got["db"], [][2]int64{{base, 100 * ms}}) {
		t.Errorf("by service: %v", got)
	}

	getJSON(t, s, api.SeriesPath, q("query", `cpu`, "from", "-1d"), &resp)
	if resp.Step != 5*60_000 { // 24h / 500 = 2.88m, rounded up
		t.Errorf("default step over a day %dms, want 5m", resp.Step)
	}
}

func formatMS(ms int64) string { return itoa(ms) }

func TestLabels(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	var names api.LabelsResponse
	getJSON(t, s, api.LabelsPath, nil, &names)
	if !slices.Equal(names.Names, []string{"node", "service", "version"}) {
		t.Errorf("names %v", names.Names)
	}
	getJSON(t, s, api.LabelsPath, q("query", `{service="db"}`), &names)
	if !slices.Equal(names.Names, []string{"node", "service"}) {
		t.Errorf("names of service=db %v", names.Names)
	}
	tests := []struct {
		name   string
		params url.Values
		want   []string
	}{
		{"service", nil, []string{"api", "db"}},
		{"node", q("query", `{service="api"}`), []string{"n1", "n3"}},
		{"node", q("query", `alloc_space`), []string{"n1"}},
		{"version", q("query", `{node="n1"}`), []string{"1.8.2"}},
		{"__name__", nil, []string{"alloc_space", "cpu"}},
		{"__name__", q("query", `{service="db"}`), []string{"cpu"}},
	}
	for _, tt := range tests {
		var vals api.LabelValuesResponse
		getJSON(t, s, "/api/v1/labels/"+tt.name+"/values", tt.params, &vals)
		if vals.Name != tt.name || !slices.Equal(vals.Values, tt.want) {
			t.Errorf("values of %s for %v: %+v, want %v", tt.name, tt.params, vals, tt.want)
		}
	}
	var types api.TypesResponse
	getJSON(t, s, api.TypesPath, nil, &types)
	want := []api.Type{
		{Name: "alloc_space", SampleType: "alloc_space", SampleUnit: "bytes", PeriodType: "space", PeriodUnit: "bytes"},
		{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"},
	}
	if !slices.Equal(types.Types, want) {
		t.Errorf("types %+v", types.Types)
	}
}

// TestEmpty expects 200s with empty data and a message saying why.
func TestEmpty(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	var top api.TopResponse
	getJSON(t, s, api.TopPath, q("query", `{service="nope"}`), &top)
	if len(top.Functions) != 0 || top.Total != 0 || !strings.Contains(top.Message, `no profiles match cpu{service="nope"} from`) {
		t.Errorf("top of nothing: %+v", top)
	}
	getJSON(t, s, api.TopPath, q("query", `off_cpu`), &top)
	if !strings.Contains(top.Message, "there are no off_cpu profiles in the range, types with data: alloc_space, cpu") {
		t.Errorf("message %q does not list the types with data", top.Message)
	}
	var fg api.FlamegraphResponse
	getJSON(t, s, api.FlamegraphPath, q("from", "-2h", "to", "-1h"), &fg)
	if fg.Total != 0 || len(fg.Nodes.Name) != 1 || !strings.Contains(fg.Message, "there are no profiles at all in the range") {
		t.Errorf("flamegraph of an empty hour: %+v", fg)
	}
	var series api.SeriesResponse
	getJSON(t, s, api.SeriesPath, q("query", `{service="nope"}`), &series)
	if series.Series == nil || len(series.Series) != 0 || series.Message == "" {
		t.Errorf("series of nothing: %+v", series)
	}
	body := mustGet(t, s, api.LabelsPath, q("query", `{service="nope"}`))
	if !strings.Contains(body, `"names":[]`) || !strings.Contains(body, `"message":"no series match {service=\"nope\"}`) {
		t.Errorf("labels of nothing: %s", body)
	}
	status, pb, h := get(t, s, api.PprofPath, q("query", `{service="nope"}`))
	p, err := profile.ParseData(pb)
	if status != http.StatusOK || err != nil || len(p.Sample) != 0 || !strings.Contains(h.Get(api.MessageHeader), "no profiles match") {
		t.Errorf("pprof of nothing: %d, %v, header %q", status, err, h.Get(api.MessageHeader))
	}
}

func mustGet(t *testing.T, s *apitest.Server, path string, params url.Values) string {
	t.Helper()
	status, body, _ := get(t, s, path, params)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	return string(body)
}

func TestBadRequests(t *testing.T) {
	s := apitest.Start(t, api.Options{MaxRange: 7 * 24 * time.Hour})
	tests := []struct {
		path   string
		params url.Values
		status int
		err    string
	}{
		{api.TopPath, q("query", `cpu{`), 400, `bad query: invalid selector "cpu{"`},
		{api.TopPath, q("query", `{__name__=~"c.*"}`), 400, "profile type must be a plain name, got a regex"},
		{api.TopPath, q("from", "yesterday"), 400, `bad from: bad time "yesterday"`},
		{api.TopPath, q("to", "123"), 400, `bad to: time "123" (1970-01-01T00:02:03Z) is out of range`},
		{api.TopPath, q("from", "-1h", "to", "-2h"), 400, "must be before to"},
		{api.TopPath, q("from", "now", "to", "now"), 400, "must be before to"},
		{api.TopPath, q("from", "-8d"), 400, "longer than the server's limit of 168h0m0s"},
		{api.TopPath, q("qeury", `cpu`, "limt", "3"), 400, `unknown parameters "limt", "qeury" (this endpoint takes query, from, to, type, limit, order)`},
		{api.TopPath, url.Values{"query": {"cpu", "alloc_space"}}, 400, `parameter "query" given 2 times`},
		{api.TopPath, q("limit", "-1"), 400, `bad limit "-1"`},
		{api.TopPath, q("order", "cum"), 400, `bad order "cum": want self or total`},
		{api.TopPath, q("type", "cpu{}"), 400, `bad type "cpu{}"`},
		{api.FlamegraphPath, q("max_nodes", "1"), 400, `bad max_nodes "1": want an integer from 2`},
		{api.SeriesPath, q("step", "1s", "from", "-1d"), 400, "gives 86400 points per series, more than the limit of 11000"},
		{api.SeriesPath, q("step", "10"), 400, `bad step: bad duration "10"`},
		{api.SeriesPath, q("step", "100ms"), 400, "must be at least 1s"},
		{api.SeriesPath, q("by", "service,no-de"), 400, `bad by: "no-de" is not a label name`},
		{"/api/v1/labels/no-de/values", nil, 400, `bad label name "no-de"`},
		{api.TypesPath, q("query", "cpu"), 400, `unknown parameter "query" (this endpoint takes from, to)`},
		{api.PprofPath, q("query", "cpu{"), 400, "invalid selector"},
		{"/api/v1/nope", nil, 404, "unknown API path /api/v1/nope"},
	}
	for _, tt := range tests {
		t.Run(tt.path+"?"+tt.params.Encode(), func(t *testing.T) {
			status, body, h := get(t, s, tt.path, tt.params)
			var e api.ErrorResponse
			if err := json.Unmarshal(body, &e); err != nil || h.Get("Content-Type") != "application/json" {
				t.Fatalf("error body %q (%v), content type %q", body, err, h.Get("Content-Type"))
			}
			if status != tt.status || !strings.Contains(e.Error, tt.err) {
				t.Errorf("%d %q, want %d and an error containing %q", status, e.Error, tt.status, tt.err)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	resp, err := http.Post(s.URL+api.TopPath, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestMetrics checks that requests are timed per endpoint.
func TestMetrics(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	mustGet(t, s, api.SeriesPath, nil)
	mustGet(t, s, api.TopPath, nil)
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "flightrec_query_duration_seconds" {
			continue
		}
		for _, m := range mf.Metric {
			counts[m.Label[0].GetValue()] = m.Histogram.GetSampleCount()
		}
	}
	if counts["series"] != 1 || counts["top"] != 1 {
		t.Errorf("request counts by endpoint %v, want series and top 1", counts)
	}
}
