package e2e

// End-to-end tests of the flight recorder (docs/triggers.md,
// docs/snapshot.md): the real agent, server and CLI on the real kernel, with
// Debian's Prometheus and Alertmanager driving the SLO-burn trigger.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/internal/testenv"
	"github.com/flightrec/flightrec/internal/testworkload"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// snapSummary is an entry of GET /api/v1/snapshots (docs/api.md).
type snapSummary struct {
	ID         string            `json:"id"`
	Node       string            `json:"node"`
	Labels     map[string]string `json:"labels"`
	Trigger    snapshot.Trigger  `json:"trigger"`
	StartNS    int64             `json:"start_ns"`
	EndNS      int64             `json:"end_ns"`
	Processes  int               `json:"processes"`
	Size       int64             `json:"size"`
	ReceivedNS int64             `json:"received_ns"`
}

// recorderAgent is `flightrec-agent run` with its flight recorder.
type recorderAgent struct {
	*agentProc
	node  string
	admin string // admin address, host:port
	dir   string // --snapshot-dir
}

// uniqueNode is a node name no other test run uses.
func uniqueNode(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// startRecorderAgent runs the agent against server with its own admin
// address and snapshot directory, and waits until its admin endpoint is
// healthy (the BPF programs are loaded and the ring drains). extra flags
// come last and so override the defaults here.
func startRecorderAgent(t *testing.T, server, node string, extra ...string) *recorderAgent {
	t.Helper()
	a := &recorderAgent{node: node, admin: freeAddr(t), dir: filepath.Join(t.TempDir(), "snapshots")}
	args := []string{"run", "--server", server, "--node", node, "--frequency", "99", "--interval", "2s",
		"--admin", a.admin, "--snapshot-dir", a.dir, "--cache-dir", ""}
	a.agentProc = startAgent(t, append(args, extra...)...)
	logOnFailure(t, "agent "+node, a.agentProc)
	if !waitFor(30*time.Second, func() bool {
		code, _, err := httpGet("http://" + a.admin + "/healthz")
		return err == nil && code == 200 || a.exited()
	}) || a.exited() {
		t.Fatalf("agent did not become healthy: %s", a)
	}
	return a
}

// metric sums the samples of name whose labels include want, from the
// admin (agent) or server /metrics at base.
func metric(t *testing.T, base, name string, want map[string]string) float64 {
	t.Helper()
	code, body, err := httpGet(base + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET %s/metrics: %d %v", base, code, err)
	}
	return metricSum(body, name, want)
}

// metricSum parses Prometheus text format: the sum over the samples of
// name carrying every label of want (values without commas or quotes).
func metricSum(body, name string, want map[string]string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metricName, labels, _ := strings.Cut(series, "{")
		if metricName != name {
			continue
		}
		have := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				have[k] = strings.Trim(v, `"`)
			}
		}
		match := true
		for k, v := range want {
			match = match && have[k] == v
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil && match {
			sum += f
		}
	}
	return sum
}

// logOnFailure prints what p wrote, once the test has failed.
func logOnFailure(t *testing.T, name string, p *agentProc) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s %q:\nstdout:\n%s\nstderr:\n%s", name, p.cmd.Args, &p.stdout, &p.stderr)
		}
	})
}

// waitNode waits until the server has profiles of node matching sel, so
// that a trigger for sel resolves to it.
func waitNode(t *testing.T, srv *serverProc, node, sel string, a *recorderAgent) {
	t.Helper()
	start := time.Now()
	if !waitFor(30*time.Second, func() bool {
		return slices.Contains(labelValues(t, srv, "node", "cpu"+sel), node) || a.exited()
	}) || a.exited() {
		t.Fatalf("the server has no profiles of node %s matching %s after 30 s: %s", node, sel, a)
	}
	t.Logf("server resolves %s to node %s after %v", sel, node, time.Since(start).Round(time.Millisecond))
}

func listSnapshots(t *testing.T, srv *serverProc) []snapSummary {
	t.Helper()
	var r struct {
		Snapshots []snapSummary `json:"snapshots"`
		Total     int           `json:"total"`
	}
	getJSON(t, srv.url+"/api/v1/snapshots", &r)
	if r.Total != len(r.Snapshots) {
		t.Fatalf("snapshot list: total %d but %d listed without a limit", r.Total, len(r.Snapshots))
	}
	return r.Snapshots
}

// waitSnapshot waits for a listed snapshot for which match holds.
func waitSnapshot(t *testing.T, srv *serverProc, timeout time.Duration, what string, match func(snapSummary) bool) snapSummary {
	t.Helper()
	var found snapSummary
	var last []snapSummary
	if !waitFor(timeout, func() bool {
		last = listSnapshots(t, srv)
		i := slices.IndexFunc(last, match)
		if i >= 0 {
			found = last[i]
		}
		return i >= 0
	}) {
		t.Fatalf("no snapshot %s within %v; the server lists %+v", what, timeout, last)
	}
	return found
}

func countSnapshots(t *testing.T, srv *serverProc, match func(snapSummary) bool) int {
	t.Helper()
	n := 0
	for _, s := range listSnapshots(t, srv) {
		if match(s) {
			n++
		}
	}
	return n
}

// fetchSnapshot downloads a snapshot as stored (gzipped JSON) and decodes
// it with the wire package's validation.
func fetchSnapshot(t *testing.T, srv *serverProc, id string) (*snapshot.Snapshot, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.url+"/api/v1/snapshots/"+url.PathEscape(id), nil)
	// Asked for explicitly, gzip is not undone by the transport.
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET snapshot %s: %d %s", id, resp.StatusCode, raw)
	}
	if ct, ce := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"); !strings.HasPrefix(ct, "application/json") || ce != "gzip" {
		t.Errorf("GET snapshot %s: Content-Type %q, Content-Encoding %q: want application/json, gzip", id, ct, ce)
	}
	s, err := snapshot.Decode(raw, snapshot.DefaultLimits)
	if err != nil {
		t.Fatalf("snapshot %s as served: %v", id, err)
	}
	if s.ID != id {
		t.Fatalf("GET snapshot %s returned snapshot %s", id, s.ID)
	}
	return s, raw
}

// snapshotPprof fetches a sub-window of a snapshot as a pprof profile.
func snapshotPprof(t *testing.T, srv *serverProc, id string, params url.Values) *profile.Profile {
	t.Helper()
	u := srv.url + "/api/v1/snapshots/" + url.PathEscape(id) + "/pprof?" + params.Encode()
	code, body, err := httpGet(u)
	if err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v %s", u, code, err, body)
	}
	p, err := profile.ParseData([]byte(body))
	if err != nil {
		t.Fatalf("parse pprof of snapshot %s: %v", id, err)
	}
	return p
}

// pidSampleTimes are the sample times of pid whose stack holds fn ("" for any).
func pidSampleTimes(s *snapshot.Snapshot, pid int, fn string) []int64 {
	var out []int64
	for i, p := range s.Samples.PID {
		if int(p) != pid {
			continue
		}
		if st := s.Samples.Stack[i]; fn == "" || st >= 0 && slices.Contains(stackFunctions(s, st), fn) {
			out = append(out, s.Samples.TimeNS[i])
		}
	}
	return out
}

func countBefore(times []int64, t int64) (before, after int) {
	for _, x := range times {
		if x < t {
			before++
		} else {
			after++
		}
	}
	return before, after
}

func snapProcess(s *snapshot.Snapshot, pid int) (snapshot.Process, bool) {
	i := slices.IndexFunc(s.Processes, func(p snapshot.Process) bool { return int(p.PID) == pid })
	if i < 0 {
		return snapshot.Process{}, false
	}
	return s.Processes[i], true
}

// post sends body with the given headers and returns status and answer.
func post(t *testing.T, u string, body []byte, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// webhookResult is one alert of the server's answer to a webhook.
type webhookResult struct {
	Fingerprint string   `json:"fingerprint"`
	Alertname   string   `json:"alertname"`
	Selector    string   `json:"selector"`
	Outcome     string   `json:"outcome"`
	ID          string   `json:"id"`
	Nodes       []string `json:"nodes"`
	Message     string   `json:"message"`
}

func postWebhook(t *testing.T, srv *serverProc, body []byte) (int, []webhookResult, string) {
	t.Helper()
	code, answer := post(t, srv.url+"/api/v1/alertmanager", body, "Content-Type", "application/json")
	var r struct{ Alerts []webhookResult }
	if code == 200 {
		if err := json.Unmarshal([]byte(answer), &r); err != nil {
			t.Fatalf("webhook answer %q: %v", answer, err)
		}
	}
	return code, r.Alerts, answer
}

// sloApp is the service Prometheus scrapes: request counters of service
// gosplit, failing half its requests while burst is set.
type sloApp struct {
	burst   atomic.Bool
	ok, bad atomic.Int64
}

func (a *sloApp) run(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			a.ok.Add(10)
			if a.burst.Load() {
				a.bad.Add(10)
			}
		}
	}
}

func (a *sloApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n"+
		"http_requests_total{service=\"gosplit\",code=\"200\"} %d\nhttp_requests_total{service=\"gosplit\",code=\"500\"} %d\n",
		a.ok.Load(), a.bad.Load())
}

// webhookLog keeps what Alertmanager sent to its second webhook, a copy
// of what the flightrec server got.
type webhookLog struct {
	mu    sync.Mutex
	times []time.Time
	// bodies as sent
	bodies [][]byte
}

func (l *webhookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.times = append(l.times, time.Now())
	l.bodies = append(l.bodies, b)
	l.mu.Unlock()
}

func (l *webhookLog) first() (time.Time, []byte, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bodies) == 0 {
		return time.Time{}, nil, 0
	}
	return l.times[0], l.bodies[0], len(l.bodies)
}

// promQuery runs an instant query against Prometheus's HTTP API.
func promQuery(promURL, q string) ([]struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}, error) {
	code, body, err := httpGet(promURL + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil || code != 200 {
		return nil, fmt.Errorf("query %s: %d %v %s", q, code, err, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, err
	}
	return r.Data.Result, nil
}

type promAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
	ActiveAt time.Time         `json:"activeAt"`
}

func promAlerts(t *testing.T, promURL string) []promAlert {
	t.Helper()
	var r struct {
		Data struct{ Alerts []promAlert } `json:"data"`
	}
	getJSON(t, promURL+"/api/v1/alerts", &r)
	return r.Data.Alerts
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits for a Prometheus-style /-/ready endpoint.
func waitReady(t *testing.T, name, base string, p *agentProc) {
	t.Helper()
	if !waitFor(30*time.Second, func() bool {
		code, _, err := httpGet(base + "/-/ready")
		return err == nil && code == 200 || p.exited()
	}) || p.exited() {
		t.Fatalf("%s did not become ready: %s", name, p)
	}
}

const sloAlert = "E2EErrorBudgetBurn"

// TestRecorderSLOBurn: Prometheus scrapes a service whose error ratio
// jumps; a multi-window burn-rate rule fires, Alertmanager posts to the
// flightrec server, which sends a trigger down the agent's long poll; the
// snapshot that comes back holds the workload's samples from before the
// alert. Alertmanager's resend (the same payload) and a new incident of the
// same fingerprint within the cooldown take no second snapshot.
func TestRecorderSLOBurn(t *testing.T) {
	testenv.RequireBPF(t)
	promBin := testenv.Tool(t, "prometheus", "prometheus")
	amBin := testenv.Tool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	testStart := time.Now()

	srv := startServer(t, t.TempDir(), "--log-level", "info")
	logOnFailure(t, "server", srv.agentProc)
	w := testworkload.Start(t, testworkload.Build(t, "gosplit"))
	// No crash trigger: a process crashing elsewhere on the machine must
	// not add snapshots to those this test counts.
	agent := startRecorderAgent(t, srv.url, uniqueNode("e2e-slo"), "--snapshot-after", "2s", "--crash-trigger=false")
	waitNode(t, srv, agent.node, `{service="gosplit"}`, agent)

	app := &sloApp{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go app.run(ctx)
	appSrv := httptest.NewServer(app)
	t.Cleanup(appSrv.Close)
	hooks := &webhookLog{}
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)

	dir := t.TempDir()
	amAddr, promAddr := freeAddr(t), freeAddr(t)
	writeFile(t, filepath.Join(dir, "alertmanager.yml"), fmt.Sprintf(`route:
  receiver: flightrec
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: flightrec
    webhook_configs:
      - url: %s/api/v1/alertmanager
        send_resolved: false
      - url: %s/copy
        send_resolved: false
`, srv.url, hookSrv.URL))
	// Multi-window burn rate as in deploy/prometheus/slo-rules.yml, with
	// windows of seconds instead of hours.
	ratio := func(window string) string {
		return fmt.Sprintf(`(sum by (service) (rate(http_requests_total{code=~"5.."}[%[1]s])) / sum by (service) (rate(http_requests_total[%[1]s])))`, window)
	}
	writeFile(t, filepath.Join(dir, "rules.yml"), fmt.Sprintf(`groups:
  - name: e2e-slo
    interval: 1s
    rules:
      - alert: %s
        expr: '%s > (14.4 * 0.001) and %s > (14.4 * 0.001)'
        for: 0s
        labels:
          severity: page
          flightrec: capture
        annotations:
          summary: "{{ $labels.service }} burns its error budget fast"
`, sloAlert, ratio("30s"), ratio("10s")))
	writeFile(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['%s']
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['%s']
`, amAddr, strings.TrimPrefix(appSrv.URL, "http://")))

	am := startCmd(t, amBin, "--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=", "--log.level=warn")
	logOnFailure(t, "alertmanager", am)
	prom := startCmd(t, promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "prom"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	logOnFailure(t, "prometheus", prom)
	promURL := "http://" + promAddr
	waitReady(t, "alertmanager", "http://"+amAddr, am)
	waitReady(t, "prometheus", promURL, prom)

	// Healthy traffic first: once both windows have a ratio (of 0), the
	// rule has been evaluated and must not fire.
	healthy := ratio("30s") + " == 0 and " + ratio("10s") + " == 0"
	if !waitFor(30*time.Second, func() bool {
		r, err := promQuery(promURL, healthy)
		return err == nil && len(r) == 1 && r[0].Metric["service"] == "gosplit"
	}) {
		r, err := promQuery(promURL, ratio("10s"))
		t.Fatalf("Prometheus has no error ratio of 0 for gosplit after 30 s: %v %v", r, err)
	}
	time.Sleep(2 * time.Second) // two evaluations over healthy traffic
	if as := promAlerts(t, promURL); len(as) != 0 {
		t.Fatalf("alerts before any error: %+v", as)
	}
	if n := len(listSnapshots(t, srv)); n != 0 {
		t.Fatalf("%d snapshots before any error", n)
	}

	burst := time.Now()
	app.burst.Store(true)
	t.Logf("error burst begins %v after the test started", burst.Sub(testStart).Round(time.Millisecond))
	isAlert := func(s snapSummary) bool { return s.Trigger.Kind == "alert" && s.Trigger.Labels["alertname"] != "" }
	sum := waitSnapshot(t, srv, 90*time.Second, "of kind alert", isAlert)
	seen := time.Now()

	hookAt, hookBody, hookCount := hooks.first()
	if hookBody == nil {
		t.Fatal("a snapshot of kind alert but Alertmanager sent no webhook")
	}
	var firing promAlert
	for _, a := range promAlerts(t, promURL) {
		if a.Labels["alertname"] == sloAlert && a.State == "firing" {
			firing = a
		}
	}
	trig := time.Unix(0, sum.Trigger.TimeNS)
	rel := func(x time.Time) string { return "+" + x.Sub(burst).Round(time.Millisecond).String() }
	t.Logf("timeline from the burst: prometheus alert active %s, webhook at %s, trigger time %s, snapshot stored %s, listed %s",
		rel(firing.ActiveAt), rel(hookAt), rel(trig), rel(time.Unix(0, sum.ReceivedNS)), rel(seen))

	if trig.Before(burst) || trig.After(hookAt.Add(2*time.Second)) {
		t.Errorf("trigger time %v: want after the burst began (%v) and about when Alertmanager sent the webhook (%v)", trig, burst, hookAt)
	}
	s, _ := fetchSnapshot(t, srv, sum.ID)
	var webhook struct {
		Alerts []struct {
			Fingerprint string            `json:"fingerprint"`
			Labels      map[string]string `json:"labels"`
			StartsAt    string            `json:"startsAt"`
		} `json:"alerts"`
	}
	if err := json.Unmarshal(hookBody, &webhook); err != nil || len(webhook.Alerts) != 1 {
		t.Fatalf("Alertmanager's webhook: %v, %s", err, hookBody)
	}
	fp := webhook.Alerts[0].Fingerprint
	tr := s.Trigger
	switch {
	case s.Node != agent.node:
		t.Errorf("snapshot of node %q, want %q", s.Node, agent.node)
	case tr.Kind != "alert" || tr.Fingerprint != fp || tr.Selector != `{service="gosplit"}`:
		t.Errorf("trigger %+v: want kind alert, fingerprint %q, selector {service=\"gosplit\"}", tr, fp)
	case !strings.HasPrefix(tr.Reason, sloAlert+" (gosplit burns its error budget fast"):
		t.Errorf("trigger reason %q does not name the alert and its summary", tr.Reason)
	case tr.Labels["alertname"] != sloAlert || tr.Labels["service"] != "gosplit" || tr.Labels["severity"] != "page":
		t.Errorf("trigger labels %v: want the alert's", tr.Labels)
	case !regexp.MustCompile(`^t-[0-9]+-[0-9]+$`).MatchString(tr.ID):
		t.Errorf("trigger id %q: want the server's t-<ns>-<seq>", tr.ID)
	case s.EndNS-tr.TimeNS != int64(10*time.Second) || tr.TimeNS-s.StartNS != int64(60*time.Second):
		t.Errorf("window %v before, %v after the trigger: want the alert window, 60s and 10s",
			time.Duration(tr.TimeNS-s.StartNS), time.Duration(s.EndNS-tr.TimeNS))
	}
	if p, ok := snapProcess(s, w.Pid); !ok || p.Labels["service"] != "gosplit" {
		t.Errorf("gosplit (pid %d) in the snapshot's processes: %v %v", w.Pid, ok, p.Labels)
	}

	// Pre-alert evidence: gosplit burning in its functions before the trigger.
	all := pidSampleTimes(s, w.Pid, "")
	cpuA := pidSampleTimes(s, w.Pid, "main.cpuA")
	beforeAll, afterAll := countBefore(all, tr.TimeNS)
	beforeA, _ := countBefore(cpuA, tr.TimeNS)
	earliest := time.Duration(0)
	if len(all) > 0 {
		earliest = time.Duration(tr.TimeNS - slices.Min(all))
	}
	t.Logf("snapshot %s: %d samples, %d of gosplit (%d before the trigger, %d after, the earliest %v before), %d before it in main.cpuA",
		s.ID, len(s.Samples.TimeNS), len(all), beforeAll, afterAll, earliest.Round(time.Millisecond), beforeA)
	if beforeA == 0 || afterAll == 0 {
		t.Errorf("gosplit has %d samples in main.cpuA before the trigger and %d samples after it: want both", beforeA, afterAll)
	}
	// The agent ran since before the server knew gosplit, Prometheus'
	// warm-up and the burst: the ring reaches back further than this.
	if earliest < 5*time.Second {
		t.Errorf("the earliest gosplit sample is %v before the trigger: want the history before the alert", earliest)
	}
	// The server's cut of the same window: pre-alert CPU of gosplit has its split.
	pre := snapshotPprof(t, srv, s.ID, url.Values{"type": {"cpu"}, "to": {strconv.FormatInt(tr.TimeNS, 10)}, "pid": {strconv.Itoa(w.Pid)}})
	if n := int64(len(pre.Sample)); n == 0 {
		t.Errorf("pprof of gosplit before the trigger is empty")
	}
	if got := weight(pre.Sample) / s.Samples.PeriodNS; got != int64(beforeAll) {
		t.Errorf("pprof before the trigger weighs %d samples of gosplit, the snapshot has %d", got, beforeAll)
	}
	if beforeAll >= 800 {
		checkShares(t, pre.Sample, testworkload.Split("gosplit"), 8)
	} else {
		t.Logf("only %d samples before the trigger: split not checked", beforeAll)
	}

	// Dedup by fingerprint. Alertmanager resending the alert (the same
	// payload) is a duplicate; a new incident of the same fingerprint
	// within --alert-cooldown is in cooldown. Neither is sent to agents.
	code, res, answer := postWebhook(t, srv, hookBody)
	if code != 200 || len(res) != 1 || res[0].Outcome != "duplicate" || res[0].Fingerprint != fp {
		t.Errorf("Alertmanager's webhook again: %d %s, want outcome duplicate for %s", code, answer, fp)
	}
	var again map[string]any
	_ = json.Unmarshal(hookBody, &again)
	again["alerts"].([]any)[0].(map[string]any)["startsAt"] = time.Now().UTC().Format(time.RFC3339Nano)
	newIncident, _ := json.Marshal(again)
	code, res, answer = postWebhook(t, srv, newIncident)
	if code != 200 || len(res) != 1 || res[0].Outcome != "cooldown" {
		t.Errorf("the alert with a new startsAt: %d %s, want outcome cooldown", code, answer)
	}
	time.Sleep(time.Second) // a trigger queued by mistake reaches the agent's poll at once
	fired := metric(t, srv.url, "flightrec_triggers_total", map[string]string{"kind": "alert", "outcome": "fired"})
	dup := metric(t, srv.url, "flightrec_triggers_total", map[string]string{"kind": "alert", "outcome": "duplicate"})
	cool := metric(t, srv.url, "flightrec_triggers_total", map[string]string{"kind": "alert", "outcome": "cooldown"})
	atAgent := metric(t, "http://"+agent.admin, "flightrec_agent_triggers_total", map[string]string{"kind": "alert"})
	t.Logf("server: alert triggers fired %v, duplicate %v, cooldown %v; agent got %v; Alertmanager sent %d webhooks", fired, dup, cool, atAgent, hookCount)
	if fired != 1 || dup < 1 || cool != 1 || atAgent != 1 {
		t.Errorf("alert triggers: server fired %v, duplicate %v, cooldown %v; agent got %v: want 1, ≥ 1, 1; 1", fired, dup, cool, atAgent)
	}
	if n := countSnapshots(t, srv, isAlert); n != 1 {
		t.Errorf("%d snapshots of kind alert, want 1", n)
	}
}

// TestRecorderManualTrigger: `flightrec trigger` reaches the agent of the
// node running the selected service and a snapshot with the reason comes
// back; a second one within the agent's cooldown is refused by the agent.
// The agent's own admin endpoint takes triggers too, under its own cooldown.
func TestRecorderManualTrigger(t *testing.T) {
	testenv.RequireBPF(t)
	srv := startServer(t, t.TempDir(), "--log-level", "info")
	logOnFailure(t, "server", srv.agentProc)
	w := testworkload.Start(t, testworkload.Build(t, "gosplit"))
	agent := startRecorderAgent(t, srv.url, uniqueNode("e2e-manual"), "--snapshot-after", "2s", "--trigger-cooldown", "1m", "--crash-trigger=false")
	waitNode(t, srv, agent.node, `{service="gosplit"}`, agent)
	adminMetric := func(kind, outcome string) float64 {
		return metric(t, "http://"+agent.admin, "flightrec_agent_triggers_total", map[string]string{"kind": kind, "outcome": outcome})
	}
	cli := func(args ...string) *agentProc {
		t.Helper()
		c := startCmd(t, serverBin, append(args, "--server", srv.url)...)
		c.wait(t, time.Minute)
		return c
	}

	start := time.Now()
	trig := cli("trigger", "--selector", `{service="gosplit"}`, "--reason", "e2e manual", "--before", "20s", "--after", "2s")
	m := regexp.MustCompile(`^trigger (t-[0-9]+-[0-9]+) sent to (.+)\n$`).FindStringSubmatch(trig.stdout.String())
	if trig.code != 0 || m == nil || m[2] != agent.node {
		t.Fatalf("flightrec trigger: want exit 0 and the trigger sent to %s: %s", agent.node, trig)
	}
	if strings.Contains(trig.stderr.String(), "polled") {
		t.Errorf("flightrec trigger warns the agent does not poll, though it runs: %s", trig.stderr.String())
	}
	triggerID := m[1]
	sum := waitSnapshot(t, srv, 30*time.Second, `with reason "e2e manual"`, func(s snapSummary) bool { return s.Trigger.Reason == "e2e manual" })
	t.Logf("manual trigger %s: snapshot %s listed %v after the CLI ran", triggerID, sum.ID, time.Since(start).Round(time.Millisecond))
	s, _ := fetchSnapshot(t, srv, sum.ID)
	tr := s.Trigger
	if s.Node != agent.node || tr.Kind != "manual" || tr.ID != triggerID || tr.Selector != `{service="gosplit"}` {
		t.Errorf("snapshot of node %q, trigger %+v: want node %s, kind manual, id %s, the selector", s.Node, tr, agent.node, triggerID)
	}
	if s.EndNS-tr.TimeNS != int64(2*time.Second) || tr.TimeNS-s.StartNS != int64(20*time.Second) {
		t.Errorf("window %v before, %v after the trigger: want --before 20s, --after 2s",
			time.Duration(tr.TimeNS-s.StartNS), time.Duration(s.EndNS-tr.TimeNS))
	}
	if d := time.Unix(0, tr.TimeNS).Sub(start); d < 0 || d > 5*time.Second {
		t.Errorf("trigger time %v after the CLI started: want when it ran", d)
	}

	// The CLI lists it and cuts gosplit's profile out of it.
	list := cli("snapshots", "--selector", `{service="gosplit"}`)
	if list.code != 0 || !strings.Contains(list.stdout.String(), sum.ID) || !strings.Contains(list.stdout.String(), "e2e manual") {
		t.Errorf("flightrec snapshots does not list %s: %s", sum.ID, list)
	}
	out := filepath.Join(t.TempDir(), "snap.pb.gz")
	pp := cli("snapshot", "pprof", sum.ID, "--pid", strconv.Itoa(w.Pid), "-o", out)
	if pp.code != 0 {
		t.Fatalf("flightrec snapshot pprof: %s", pp)
	}
	ss := readProfile(t, out).Sample
	a, b, c := percent(ss, hasFunction("main.cpuA")), percent(ss, hasFunction("main.cpuB")), percent(ss, hasFunction("main.cpuC"))
	t.Logf("gosplit in the snapshot: %v of CPU, cpuA %.1f%%, cpuB %.1f%%, cpuC %.1f%% (truth 60/30/10)", time.Duration(weight(ss)), a, b, c)
	if !(a > b && b > c && c > 0) {
		t.Errorf("gosplit's split in the snapshot: cpuA %.1f%%, cpuB %.1f%%, cpuC %.1f%%: want ordered as 60/30/10", a, b, c)
	}
	tl := cli("snapshot", "timeline", sum.ID)
	if tl.code != 0 || !strings.Contains(tl.stdout.String(), "manual: e2e manual") || !strings.Contains(tl.stdout.String(), "gosplit") {
		t.Errorf("flightrec snapshot timeline: %s", tl)
	}

	// A second trigger at once: the server sends it, the agent's cooldown
	// (--trigger-cooldown 1m) refuses it.
	again := cli("trigger", "--selector", `{service="gosplit"}`, "--reason", "e2e manual again", "--before", "20s", "--after", "2s")
	if again.code != 0 {
		t.Fatalf("second flightrec trigger: %s", again)
	}
	if !waitFor(10*time.Second, func() bool { return adminMetric("manual", "cooldown") >= 1 }) {
		t.Fatalf("the agent did not count the second trigger as cooldown: fired %v, cooldown %v",
			adminMetric("manual", "fired"), adminMetric("manual", "cooldown"))
	}

	// The admin endpoint: its own cooldown key, so it fires once, then 429.
	code, body := post(t, "http://"+agent.admin+"/trigger?reason=e2e+admin&before=10s&after=1s", nil)
	var adm struct{ Outcome, ID string }
	_ = json.Unmarshal([]byte(body), &adm)
	if code != http.StatusAccepted || adm.Outcome != "fired" || !strings.HasPrefix(adm.ID, agent.node+"-") {
		t.Fatalf("POST /trigger on the agent: %d %s, want 202, fired, a snapshot id", code, body)
	}
	fromAdmin := waitSnapshot(t, srv, 30*time.Second, "from the admin endpoint", func(s snapSummary) bool { return s.ID == adm.ID })
	if fromAdmin.Trigger.Kind != "manual" || fromAdmin.Trigger.Reason != "e2e admin" || fromAdmin.Trigger.ID != "" ||
		fromAdmin.EndNS-fromAdmin.Trigger.TimeNS != int64(time.Second) {
		t.Errorf("admin snapshot %+v: want kind manual, reason e2e admin, no server id, 1 s after", fromAdmin)
	}
	code, body = post(t, "http://"+agent.admin+"/trigger?reason=e2e+admin+again", nil)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "cooldown") {
		t.Errorf("second POST /trigger: %d %s, want 429 cooldown", code, body)
	}
	if code, _, _ := httpGet("http://" + agent.admin + "/trigger"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /trigger on the agent: %d, want 405", code)
	}

	// Long enough for a snapshot of the refused trigger (2 s window after
	// it) to have come: only the two that fired are there.
	time.Sleep(3 * time.Second)
	snaps := listSnapshots(t, srv)
	reasons := make([]string, len(snaps))
	for i, s := range snaps {
		reasons[i] = s.Trigger.Reason
	}
	slices.Sort(reasons)
	if !slices.Equal(reasons, []string{"e2e admin", "e2e manual"}) {
		t.Errorf("snapshots with reasons %q, want e2e admin and e2e manual", reasons)
	}
	fired, cool := adminMetric("manual", "fired"), adminMetric("manual", "cooldown")
	t.Logf("agent: manual triggers fired %v, cooldown %v", fired, cool)
	if fired != 2 || cool != 2 {
		t.Errorf("agent counted %v manual triggers fired and %v in cooldown, want 2 and 2", fired, cool)
	}
}

// startServerOn is startServer on a given address.
func startServerOn(t *testing.T, addr, data string, extra ...string) *serverProc {
	t.Helper()
	args := append([]string{"server", "--data", data, "--listen", addr, "--log-level", "warn"}, extra...)
	s := &serverProc{agentProc: startCmd(t, serverBin, args...), url: "http://" + addr, data: data}
	if !waitFor(30*time.Second, func() bool {
		code, _, err := httpGet(s.url + "/healthz")
		return err == nil && code == 200 || s.exited()
	}) || s.exited() {
		t.Fatalf("server did not come up on %s: %s", addr, s)
	}
	return s
}

// spooled lists the snapshot files in the agent's spool directory.
func spooled(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json.gz") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestRecorderSpoolSurvivesOutage: a snapshot taken while the server is
// away waits in --snapshot-dir, arrives byte for byte once the server is
// up, leaves the spool, and survives a restart of the server.
func TestRecorderSpoolSurvivesOutage(t *testing.T) {
	testenv.RequireBPF(t)
	w := testworkload.Start(t, testworkload.Build(t, "gosplit"))
	addr := freeAddr(t)
	agent := startRecorderAgent(t, "http://"+addr, uniqueNode("e2e-spool"), "--snapshot-before", "5s", "--snapshot-after", "1s", "--crash-trigger=false")
	time.Sleep(2 * time.Second) // some history in the ring

	code, body := post(t, "http://"+agent.admin+"/trigger?reason=e2e+outage", nil)
	var adm struct{ Outcome, ID string }
	_ = json.Unmarshal([]byte(body), &adm)
	if code != http.StatusAccepted || adm.ID == "" {
		t.Fatalf("POST /trigger on the agent: %d %s", code, body)
	}
	fired := time.Now()
	nameRE := regexp.MustCompile(`^[0-9]{20}-` + regexp.QuoteMeta(adm.ID) + `\.json\.gz$`)
	if !waitFor(15*time.Second, func() bool { f := spooled(t, agent.dir); return len(f) == 1 && nameRE.MatchString(f[0]) }) {
		t.Fatalf("no spooled snapshot %s in %s after 15 s: %v", adm.ID, agent.dir, spooled(t, agent.dir))
	}
	t.Logf("snapshot %s spooled %v after the trigger", adm.ID, time.Since(fired).Round(time.Millisecond))
	file := filepath.Join(agent.dir, spooled(t, agent.dir)[0])
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.Decode(raw, snapshot.DefaultLimits)
	if err != nil {
		t.Fatalf("spooled snapshot: %v", err)
	}
	if s.ID != adm.ID || s.Trigger.Reason != "e2e outage" || len(pidSampleTimes(s, w.Pid, "main.cpuA")) == 0 {
		t.Errorf("spooled snapshot %s, reason %q, %d samples of gosplit in main.cpuA: want %s, e2e outage, some",
			s.ID, s.Trigger.Reason, len(pidSampleTimes(s, w.Pid, "main.cpuA")), adm.ID)
	}
	time.Sleep(2 * time.Second) // a few failed sends
	if f := spooled(t, agent.dir); len(f) != 1 {
		t.Fatalf("with the server away the spool holds %v", f)
	}

	data := t.TempDir()
	up := time.Now()
	srv := startServerOn(t, addr, data)
	logOnFailure(t, "server", srv.agentProc)
	sum := waitSnapshot(t, srv, 45*time.Second, adm.ID, func(s snapSummary) bool { return s.ID == adm.ID })
	t.Logf("snapshot listed %v after the server came up", time.Since(up).Round(time.Millisecond))
	if !waitFor(10*time.Second, func() bool { return len(spooled(t, agent.dir)) == 0 }) {
		t.Errorf("the spool still holds %v after the server acknowledged the snapshot", spooled(t, agent.dir))
	}
	if sum.Node != agent.node || sum.Trigger.Kind != "manual" {
		t.Errorf("listed %+v: want node %s, kind manual", sum, agent.node)
	}
	if _, got := fetchSnapshot(t, srv, adm.ID); !bytes.Equal(got, raw) {
		t.Errorf("the server serves %d bytes for %s, not the %d the agent spooled", len(got), adm.ID, len(raw))
	}
	// The agent retrying after a lost answer: acknowledged, not stored twice.
	code, body = post(t, srv.url+"/api/v1/snapshots", raw, "Content-Type", "application/json", "Content-Encoding", "gzip")
	if code != 200 || !strings.Contains(body, `"duplicate":true`) {
		t.Errorf("the spooled snapshot sent again: %d %s, want 200 duplicate", code, body)
	}

	if code := srv.terminate(t, 30*time.Second); code != 0 {
		t.Errorf("server exit %d after SIGTERM: %s", code, srv)
	}
	restarted := startServerOn(t, addr, data)
	logOnFailure(t, "restarted server", restarted.agentProc)
	if l := listSnapshots(t, restarted); len(l) != 1 || l[0].ID != adm.ID || l[0].Size != int64(len(raw)) {
		t.Errorf("after a restart the server lists %+v, want %s of %d bytes", l, adm.ID, len(raw))
	}
	if _, got := fetchSnapshot(t, restarted, adm.ID); !bytes.Equal(got, raw) {
		t.Errorf("after a restart the server serves %d bytes for %s, not the %d spooled", len(got), adm.ID, len(raw))
	}
	var tl struct {
		ID        string
		Processes []struct{ PID int }
	}
	getJSON(t, restarted.url+"/api/v1/snapshots/"+adm.ID+"/timeline", &tl)
	if tl.ID != adm.ID || !slices.ContainsFunc(tl.Processes, func(p struct{ PID int }) bool { return p.PID == w.Pid }) {
		t.Errorf("timeline after a restart: id %q, processes %v: want gosplit (pid %d)", tl.ID, tl.Processes, w.Pid)
	}
}

// TestRecorderCrashTrigger: a watched process dying of SIGSEGV makes the
// agent take a snapshot of kind signal, holding the signal event with the
// crashing stack; an unwatched one does not.
func TestRecorderCrashTrigger(t *testing.T) {
	testenv.RequireBPF(t)
	// The watched crasher has a name of its own (comm, at most 15 bytes):
	// another test crashing "crasher" on this machine must not count here.
	built := buildCrasher(t)
	comm := uniqueNode("crash")
	crasher, bystander := filepath.Join(t.TempDir(), comm), filepath.Join(t.TempDir(), "bystander")
	for _, dst := range []string{crasher, bystander} {
		if b, err := os.ReadFile(built); err != nil || os.WriteFile(dst, b, 0o755) != nil {
			t.Fatalf("copy the crasher: %v", err)
		}
	}
	srv := startServer(t, t.TempDir(), "--log-level", "info")
	logOnFailure(t, "server", srv.agentProc)
	agent := startRecorderAgent(t, srv.url, uniqueNode("e2e-crash"), "--interval", "1s",
		"--snapshot-before", "10s", "--snapshot-after", "1s", "--watch", `{comm="`+comm+`"}`)
	crash := func(bin string) int {
		t.Helper()
		cmd := exec.Command(bin)
		_ = cmd.Run()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGSEGV {
			t.Fatalf("%s: %v, want death by SIGSEGV", bin, cmd.ProcessState)
		}
		return cmd.Process.Pid
	}

	other := crash(bystander) // not watched: no snapshot
	died := time.Now()
	pid := crash(crasher)
	isCrash := func(s snapSummary) bool { return s.Trigger.Kind == "signal" && int(s.Trigger.PID) == pid }
	sum := waitSnapshot(t, srv, 30*time.Second, fmt.Sprintf("of kind signal for pid %d", pid), isCrash)
	t.Logf("crash of pid %d: snapshot %s stored %v after it died", pid, sum.ID, time.Unix(0, sum.ReceivedNS).Sub(died).Round(time.Millisecond))

	s, _ := fetchSnapshot(t, srv, sum.ID)
	tr := s.Trigger
	if s.Node != agent.node || !strings.Contains(tr.Reason, "SIGSEGV") || !strings.Contains(tr.Reason, comm) ||
		!strings.Contains(tr.Reason, fmt.Sprintf("pid %d", pid)) || tr.Labels["comm"] != comm {
		t.Errorf("snapshot of node %q, trigger %+v: want node %s, a reason naming SIGSEGV, %s and pid %d, the process's labels", s.Node, tr, agent.node, comm, pid)
	}
	if d := time.Unix(0, tr.TimeNS).Sub(died); d < -time.Second || d > 2*time.Second {
		t.Errorf("trigger time %v after the test saw the crash: want about when it crashed", d)
	}
	if p, ok := snapProcess(s, pid); !ok || p.Labels["comm"] != comm {
		t.Errorf("the crasher (pid %d) in the snapshot's processes: %v %v", pid, ok, p.Labels)
	}
	var sig, exit, execEv *snapshot.Event
	for i, e := range s.Events {
		if int(e.PID) != pid {
			continue
		}
		switch e.Kind {
		case "signal":
			sig = &s.Events[i]
		case "exit":
			exit = &s.Events[i]
		case "exec":
			execEv = &s.Events[i]
		}
	}
	switch {
	case sig == nil:
		t.Fatalf("snapshot has no signal event of pid %d: %+v", pid, s.Events)
	case sig.Signal != 11 || sig.SiCode != 1 || sig.Addr != 0x10 || sig.Stack < 0:
		t.Errorf("signal event %+v: want signal 11, si_code SEGV_MAPERR, addr 0x10 and a stack", *sig)
	default:
		names := stackFunctions(s, sig.Stack)
		t.Logf("crashing stack in the snapshot: %q; the signal %v before the trigger time", names, time.Duration(tr.TimeNS-sig.TimeNS))
		for _, f := range s.Stacks[sig.Stack] {
			// docs/snapshot.md: a frame nobody could symbolize keeps its
			// mapping, build ID and object-relative address. (The agent
			// once missed libc here: its first read of the process came
			// before the loader mapped it, and only leaf frames were
			// checked against the mappings.)
			if fr := s.Frames[f]; fr.Function == "" && fr.Mapping == "" {
				t.Errorf("unsymbolized frame without a mapping in the crashing stack: %+v", fr)
			}
		}
		if !slices.Contains(names, "crash_here") {
			t.Errorf("crashing stack %q lacks crash_here", names)
		}
	}
	if exit == nil || exit.Signal != 11 || exit.ExitCode != nil {
		t.Errorf("exit event of pid %d: %+v, want death by signal 11", pid, exit)
	}
	if execEv == nil || execEv.Filename != crasher {
		t.Errorf("exec event of pid %d: %+v, want %s", pid, execEv, crasher)
	}
	burn := pidSampleTimes(s, pid, "burn")
	t.Logf("%d samples of the crasher, %d in burn", len(pidSampleTimes(s, pid, "")), len(burn))
	if before, _ := countBefore(burn, tr.TimeNS); before == 0 {
		t.Errorf("no sample of the crasher in burn before the crash")
	}

	// The server's timeline shows the crash with its frames.
	var tl struct {
		Events []struct {
			Kind   string
			PID    int
			Frames []string
		}
	}
	getJSON(t, srv.url+"/api/v1/snapshots/"+sum.ID+"/timeline?pid="+strconv.Itoa(pid), &tl)
	if !slices.ContainsFunc(tl.Events, func(e struct {
		Kind   string
		PID    int
		Frames []string
	}) bool {
		return e.Kind == "signal" && e.PID == pid && slices.Contains(e.Frames, "crash_here")
	}) {
		t.Errorf("timeline events %+v: want the signal of pid %d in crash_here", tl.Events, pid)
	}

	// The bystander crashed first: had it been taken, its snapshot would be here.
	if n := countSnapshots(t, srv, func(s snapSummary) bool { return int(s.Trigger.PID) == other }); n != 0 {
		t.Errorf("%d snapshots for the unwatched bystander (pid %d)", n, other)
	}
	if n := metric(t, "http://"+agent.admin, "flightrec_agent_triggers_total", map[string]string{"kind": "signal"}); n != 1 {
		t.Errorf("the agent counted %v signal triggers, want 1 (the watched crasher only)", n)
	}
}

// handmadeSnapshot is a small valid snapshot.
func handmadeSnapshot(id string) *snapshot.Snapshot {
	now := time.Now().UnixNano()
	return &snapshot.Snapshot{
		Version: snapshot.Version, ID: id, Node: "e2e-handmade",
		Trigger: snapshot.Trigger{Kind: "manual", Reason: "hand-made", TimeNS: now},
		StartNS: now - int64(time.Second), EndNS: now + int64(time.Second),
		Processes: []snapshot.Process{{PID: 42, Labels: map[string]string{"service": "handmade", "comm": "handmade"}}},
		Frames:    []snapshot.Frame{{Function: "main.work", File: "main.go", Line: 3}, {Function: "main.main", File: "main.go", Line: 9}},
		Stacks:    [][]int32{{0, 1}},
		Samples:   snapshot.Samples{PeriodNS: 10_000_000, TimeNS: []int64{now}, PID: []uint32{42}, TID: []uint32{42}, CPU: []uint16{0}, Stack: []int32{0}},
		OffCPU:    snapshot.OffCPU{StartNS: []int64{}, DurationNS: []int64{}, PID: []uint32{}, TID: []uint32{}, Stack: []int32{}, State: []string{}},
		Events:    []snapshot.Event{},
	}
}

func encodeSnapshot(t *testing.T, s *snapshot.Snapshot) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := snapshot.Encode(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// gzipped compresses data.
func gzipped(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

// TestRecorderBadInput sends malformed webhooks, triggers and snapshots to
// the real server: each gets a 4xx naming the problem, and nothing is
// stored or fired; a valid snapshot afterwards is.
func TestRecorderBadInput(t *testing.T) {
	testenv.RequireBPF(t)
	srv := startServer(t, t.TempDir())
	firing := func(labels string) string {
		return `{"version":"4","status":"firing","receiver":"flightrec","alerts":[{"status":"firing","labels":` + labels +
			`,"annotations":{},"startsAt":"2026-01-02T03:04:05Z","fingerprint":"e2e0001"}]}`
	}
	webhooks := []struct {
		name, body string
		want       int
		says       string // in the error, or the alert's outcome
	}{
		{"malformed JSON", `{"version":"4","status":`, 400, "json"},
		{"empty body", ``, 400, "empty"},
		{"wrong version", strings.Replace(firing(`{"alertname":"X","service":"gosplit"}`), `"4"`, `"3"`, 1), 400, "version"},
		{"no alerts", `{"version":"4","status":"firing","alerts":[]}`, 400, "no alerts"},
		{"alerts missing", `{"version":"4","status":"firing"}`, 400, "no alerts"},
		{"alert without labels", firing(`{}`), 400, "no labels"},
		{"bad startsAt", strings.Replace(firing(`{"alertname":"X","service":"gosplit"}`), "2026-01-02T03:04:05Z", "yesterday", 1), 400, ""},
		{"alert status pending", strings.Replace(firing(`{"alertname":"X","service":"gosplit"}`), `"status":"firing","labels"`, `"status":"pending","labels"`, 1), 400, "status"},
		{"no label to select by", firing(`{"alertname":"DiskFull"}`), 200, "ignored"},
		{"service without profiles", firing(`{"alertname":"X","service":"nowhere"}`), 200, "no_nodes"},
		{"resolved", strings.ReplaceAll(firing(`{"alertname":"X","service":"gosplit"}`), "firing", "resolved"), 200, "ignored"},
	}
	for _, c := range webhooks {
		code, res, answer := postWebhook(t, srv, []byte(c.body))
		switch {
		case code != c.want:
			t.Errorf("webhook %s: %d %s, want %d", c.name, code, answer, c.want)
		case code == 200 && (len(res) != 1 || res[0].Outcome != c.says):
			t.Errorf("webhook %s: %s, want outcome %s", c.name, answer, c.says)
		case code != 200 && (!strings.Contains(strings.ToLower(answer), c.says) || !strings.Contains(answer, `"error"`)):
			t.Errorf("webhook %s: %d %s, want an error mentioning %q", c.name, code, answer, c.says)
		}
	}
	manual := []struct{ name, body, says string }{
		{"bad selector", `{"selector":"{service=","reason":"x"}`, "selector"},
		{"no reason", `{"selector":"{service=\"gosplit\"}"}`, "reason"},
		{"unknown field", `{"selector":"{service=\"gosplit\"}","reason":"x","colour":"red"}`, "colour"},
		{"window too long", `{"selector":"{service=\"gosplit\"}","reason":"x","before_s":3600}`, "before"},
	}
	for _, c := range manual {
		code, answer := post(t, srv.url+"/api/v1/triggers", []byte(c.body), "Content-Type", "application/json")
		if code != 400 || !strings.Contains(answer, c.says) {
			t.Errorf("manual trigger %s: %d %s, want 400 mentioning %q", c.name, code, answer, c.says)
		}
	}
	cli := startCmd(t, serverBin, "trigger", "--server", srv.url, "--selector", `{service="nowhere"}`, "--reason", "e2e")
	if code := cli.wait(t, time.Minute); code != 1 || !strings.Contains(cli.stderr.String(), "no_nodes") {
		t.Errorf("flightrec trigger for a service without profiles: %s, want exit 1 naming no_nodes", cli)
	}

	good := encodeSnapshot(t, handmadeSnapshot("e2e-handmade-1"))
	plain, _ := io.ReadAll(must(gzip.NewReader(bytes.NewReader(good))))
	variant := func(edit func(*snapshot.Snapshot)) []byte {
		s := handmadeSnapshot("e2e-handmade-1")
		edit(s)
		b, _ := json.Marshal(s)
		return gzipped(b)
	}
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for i := 0; i < 513; i++ { // 513 MiB of zeros, over the 512 MiB of JSON a snapshot may inflate to
		zw.Write(zero)
	}
	zw.Close()
	uploads := []struct {
		name     string
		body     []byte
		encoding string
		want     int
		says     string
	}{
		{"garbage", []byte("hello, server"), "", 400, "malformed"},
		{"empty", nil, "", 400, "empty"},
		{"truncated gzip", good[:len(good)/2], "gzip", 400, "malformed"},
		{"truncated JSON", plain[:len(plain)/2], "", 400, "malformed"},
		{"version 2", variant(func(s *snapshot.Snapshot) { s.Version = 2 }), "gzip", 400, "version"},
		{"bad id", variant(func(s *snapshot.Snapshot) { s.ID = "../../index" }), "gzip", 400, "id"},
		{"dangling stack", variant(func(s *snapshot.Snapshot) { s.Samples.Stack[0] = 7 }), "gzip", 400, "stack"},
		{"short column", variant(func(s *snapshot.Snapshot) { s.Samples.TID = nil }), "gzip", 400, ""},
		{"unknown field", gzipped(bytes.Replace(plain, []byte(`{"version"`), []byte(`{"colour":"red","version"`), 1)), "gzip", 400, "colour"},
		{"brotli", good, "br", 415, "gzip"},
		{"gzip bomb", bomb.Bytes(), "gzip", 413, "decompressed"},
	}
	for _, c := range uploads {
		h := []string{"Content-Type", "application/json"}
		if c.encoding != "" {
			h = append(h, "Content-Encoding", c.encoding)
		}
		code, answer := post(t, srv.url+"/api/v1/snapshots", c.body, h...)
		if code != c.want || !strings.Contains(strings.ToLower(answer), c.says) {
			t.Errorf("snapshot upload %s: %d %s, want %d mentioning %q", c.name, code, answer, c.want, c.says)
		}
	}
	if l := listSnapshots(t, srv); len(l) != 0 {
		t.Fatalf("after bad input the server lists %+v", l)
	}
	if n := metric(t, srv.url, "flightrec_snapshots_received_total", map[string]string{"outcome": "rejected"}); int(n) != len(uploads) {
		t.Errorf("%v uploads counted as rejected, want %d", n, len(uploads))
	}
	if n := metric(t, srv.url, "flightrec_triggers_total", map[string]string{"outcome": "fired"}); n != 0 {
		t.Errorf("%v triggers fired from bad or unresolvable input", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(srv.data, "snapshots")); slices.ContainsFunc(entries, func(e os.DirEntry) bool {
		return strings.HasSuffix(e.Name(), ".json.gz")
	}) {
		t.Errorf("snapshot files on disk after bad input: %v", entries)
	}

	// The server still takes a good one, once.
	if code, answer := post(t, srv.url+"/api/v1/snapshots", good, "Content-Type", "application/json", "Content-Encoding", "gzip"); code != 201 {
		t.Fatalf("valid snapshot after bad ones: %d %s", code, answer)
	}
	if code, answer := post(t, srv.url+"/api/v1/snapshots", good, "Content-Type", "application/json", "Content-Encoding", "gzip"); code != 200 || !strings.Contains(answer, `"duplicate":true`) {
		t.Errorf("the valid snapshot again: %d %s, want 200 duplicate", code, answer)
	}
	if l := listSnapshots(t, srv); len(l) != 1 || l[0].ID != "e2e-handmade-1" || l[0].Processes != 1 {
		t.Errorf("after a valid upload the server lists %+v", l)
	}
	if _, got := fetchSnapshot(t, srv, "e2e-handmade-1"); !bytes.Equal(got, good) {
		t.Errorf("the server serves other bytes than were uploaded")
	}
	for _, id := range []string{"nope", "..%2Findex.jsonl", "%2E%2E%2F%2E%2E%2Fsnapshots"} {
		if code, body, err := httpGet(srv.url + "/api/v1/snapshots/" + id); err != nil || code/100 != 4 {
			t.Errorf("GET snapshot %q: %d %v %.200s, want 4xx", id, code, err, body)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
