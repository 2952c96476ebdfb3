package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/internal/testenv"
	"github.com/flightrec/flightrec/internal/testworkload"
)

// uiResult is the summary ui/test/browser/e2e.mjs prints as its last line:
// what it read from the pages' test hook.
type uiResult struct {
	Widest        string   `json:"widest"`        // widest frame under main.main in Explore
	WidestShare   float64  `json:"widest_share"`  // its width over the canvas's
	TopFirst      string   `json:"top_first"`     // first row of the top table
	MatchedShare  float64  `json:"matched_share"` // of the search for it
	Zoom          []string `json:"zoom"`          // after clicking it
	ZoomAfterLoad []string `json:"zoom_reloaded"` // after a reload of that URL
	ZoomAfterEsc  []string `json:"zoom_escaped"`  // after Escape
	Regression    string   `json:"regression"`    // state of shop.compress in Compare
	Neutral       string   `json:"neutral"`       // state of shop.parse
	TableVerdict  string   `json:"table_verdict"` // shop.compress's row in the diff table
	CLI           string   `json:"cli"`           // the command line shown
	Screenshots   []string `json:"screenshots"`   // files written
	PageErrors    []string `json:"page_errors"`   // uncaught errors in the pages
}

// TestUI drives the web UI in Debian's chromium against a real server: in
// Explore the known hot function is the widest frame, search and zoom work
// and survive a reload; in Compare the injected regression is coloured as
// one and an unchanged function neutral. Screenshots go to
// $FLIGHTREC_UI_ARTIFACTS (default e2e/artifacts/ui).
func TestUI(t *testing.T) {
	b := newBrowserTest(t)
	srv := startServer(t, t.TempDir())
	uploadUIProfiles(t, srv)
	var r uiResult
	b.run(t, "e2e.mjs", &r, "FLIGHTREC_URL="+srv.url)
	t.Logf("screenshots in %s: %s", b.artifacts, strings.Join(r.Screenshots, ", "))
	checkUIResult(t, r)
}

// browserTest runs the node scripts of ui/test/browser in Debian's chromium.
type browserTest struct {
	node, chromium, root, artifacts string
}

// newBrowserTest finds node, chromium and the UI's npm packages (a missing
// one skips the test unless FLIGHTREC_REQUIRE_BPF is set, as in CI) and the
// screenshot directory, $FLIGHTREC_UI_ARTIFACTS (default e2e/artifacts/ui).
func newBrowserTest(t *testing.T) *browserTest {
	t.Helper()
	testenv.Short(t)
	b := &browserTest{chromium: testenv.Tool(t, "chromium", "chromium"), node: testenv.Tool(t, "nodejs", "node"),
		root: testworkload.RepoRoot(t)}
	if _, err := os.Stat(filepath.Join(b.root, "ui/node_modules/playwright-core")); err != nil {
		t.Fatalf("ui/node_modules/playwright-core missing (%v): run make ui-deps", err)
	}
	b.artifacts = os.Getenv("FLIGHTREC_UI_ARTIFACTS")
	if b.artifacts == "" {
		b.artifacts = filepath.Join(b.root, "e2e/artifacts/ui")
	}
	if err := os.MkdirAll(b.artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs ui/test/browser/<script> with env added and decodes the JSON
// summary it prints as its last line into result.
func (b *browserTest) run(t *testing.T, script string, result any, env ...string) {
	t.Helper()
	cmd := exec.Command(b.node, filepath.Join(b.root, "ui/test/browser", script))
	cmd.Env = append(os.Environ(), append([]string{"CHROMIUM=" + b.chromium, "FLIGHTREC_UI_ARTIFACTS=" + b.artifacts}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("browser test %s failed: %v\n%s", script, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), result); err != nil {
		t.Fatalf("browser test %s summary: %v\n%s", script, err, out)
	}
	t.Logf("browser test %s:\n%s", script, out)
}

func checkUIResult(t *testing.T, r uiResult) {
	t.Helper()
	if r.Widest != "main.hot" || math.Abs(r.WidestShare-0.6) > 0.03 {
		t.Errorf("Explore: widest frame %q at %.3f of the width, want main.hot at 0.6", r.Widest, r.WidestShare)
	}
	if r.TopFirst != "main.hot" {
		t.Errorf("Explore: top table starts with %q, want main.hot", r.TopFirst)
	}
	if math.Abs(r.MatchedShare-0.6) > 0.03 {
		t.Errorf("Explore: search for main.hot matched %.3f, want 0.6", r.MatchedShare)
	}
	want := []string{"main.main", "main.hot"}
	if fmt.Sprint(r.Zoom) != fmt.Sprint(want) || fmt.Sprint(r.ZoomAfterLoad) != fmt.Sprint(want) || len(r.ZoomAfterEsc) != 0 {
		t.Errorf("Explore: zoom %v, after reload %v, after Escape %v; want %v, %v, []", r.Zoom, r.ZoomAfterLoad, r.ZoomAfterEsc, want, want)
	}
	if r.Regression != "regression" || r.Neutral != "neutral" || r.TableVerdict != "regression" {
		t.Errorf("Compare: shop.compress %q (table %q), shop.parse %q; want regression, regression, neutral", r.Regression, r.TableVerdict, r.Neutral)
	}
	if !strings.Contains(r.CLI, "flightrec diff") || !strings.Contains(r.CLI, `--target 'cpu{service="shop",track="canary"}'`) {
		t.Errorf("Compare: CLI line %q does not reproduce the comparison", r.CLI)
	}
	if len(r.PageErrors) > 0 {
		t.Errorf("errors in the pages: %v", r.PageErrors)
	}
}

// uploadUIProfiles sends what the browser test expects: service "app" with
// main.hot at 60% (main.cold and its callee 30%, the rest 10%), and a shop whose
// canary pods spend twice the share in shop.compress (10% → 20%), with
// shop.parse at 50% on both tracks.
func uploadUIProfiles(t *testing.T, srv *serverProc) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	at := time.Now().Add(-5 * time.Minute)
	upload := func(labels string, files ...string) {
		up := startCmd(t, serverBin, append([]string{"upload", "--server", srv.url, "--labels", labels}, files...)...)
		if up.wait(t, time.Minute) != 0 {
			t.Fatalf("upload: %s", up)
		}
	}
	// A profile a minute for 12 minutes, all alike, so the shares are exact.
	var apps []string
	for k := range 12 {
		f := filepath.Join(dir, fmt.Sprintf("app-%d.pb.gz", k))
		writeStacks(t, f, at.Add(time.Duration(k-7)*time.Minute), []stackValue{
			{[]string{"main.hot", "main.main"}, 600},
			{[]string{"encoding/json.Marshal", "main.cold", "main.main"}, 200},
			{[]string{"main.cold", "main.main"}, 100},
			{[]string{"runtime.mallocgc", "main.main"}, 50},
			{[]string{"main.main"}, 50},
		})
		apps = append(apps, f)
	}
	upload(`{service="app",pod="app-0"}`, apps...)
	for _, track := range []string{"baseline", "canary"} {
		compress, handle := 0.10, 0.40
		if track == "canary" {
			compress, handle = 0.20, 0.30
		}
		for pod := range 5 {
			var files []string
			for k := range 3 {
				f := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.pb.gz", track, pod, k))
				jitter := func(s float64) int64 { return int64(1000 * s * (1 + 0.03*rng.NormFloat64())) }
				writeStacks(t, f, at.Add(time.Duration(k)*10*time.Second), []stackValue{
					{[]string{"shop.parse", "shop.handle", "main.main"}, jitter(0.5)},
					{[]string{"shop.compress", "shop.handle", "main.main"}, jitter(compress)},
					{[]string{"shop.handle", "main.main"}, jitter(handle)},
				})
				files = append(files, f)
			}
			upload(fmt.Sprintf(`{service="shop",track=%q,pod="shop-%s-%d"}`, track, track, pod), files...)
		}
	}
}

// stackValue is a stack, leaf first, and its sample count.
type stackValue struct {
	stack []string
	n     int64
}

// writeStacks writes a 10 s CPU profile at 100 Hz of the given stacks.
func writeStacks(t *testing.T, path string, at time.Time, stacks []stackValue) {
	t.Helper()
	const period = int64(10 * time.Millisecond)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: period,
		TimeNanos: at.UnixNano(), DurationNanos: int64(10 * time.Second),
	}
	locs := map[string]*profile.Location{}
	loc := func(name string) *profile.Location {
		if l, ok := locs[name]; ok {
			return l
		}
		id := uint64(len(locs) + 1)
		f := &profile.Function{ID: id, Name: name, SystemName: name, Filename: "main.go"}
		l := &profile.Location{ID: id, Line: []profile.Line{{Function: f, Line: 1}}}
		p.Function, p.Location = append(p.Function, f), append(p.Location, l)
		locs[name] = l
		return l
	}
	for _, s := range stacks {
		var ls []*profile.Location
		for _, name := range s.stack {
			ls = append(ls, loc(name))
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: ls, Value: []int64{s.n * period}})
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.Write(f); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// TestUIAuth drives the UI against a server started with
// --auth-token-file: the token form appears on the first 401, a wrong token
// does not get through, the read token draws the flamegraph and downloads
// the pprof, and a reload remembers it.
func TestUIAuth(t *testing.T) {
	b := newBrowserTest(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	ingest := filepath.Join(dir, "ingest-token")
	const readToken = "r-3c1f0e7a92d4b651"
	for name, body := range map[string]string{tokens: "ingest i-9a2b7d41c6e08f35\nread " + readToken + "\n", ingest: "i-9a2b7d41c6e08f35\n"} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServer(t, filepath.Join(dir, "data"), "--auth-token-file", tokens)
	f := filepath.Join(dir, "app.pb.gz")
	writeStacks(t, f, time.Now().Add(-2*time.Minute), []stackValue{
		{[]string{"main.hot", "main.main"}, 600},
		{[]string{"main.cold", "main.main"}, 400},
	})
	up := startCmd(t, serverBin, "upload", "--server", srv.url, "--token-file", ingest, "--labels", `{service="app"}`, f)
	if up.wait(t, time.Minute) != 0 {
		t.Fatalf("upload: %s", up)
	}

	var r struct {
		FormReason     string   `json:"form_reason"`
		WrongKeptForm  bool     `json:"wrong_kept_form"`
		Widest         string   `json:"widest"`
		DownloadBytes  int64    `json:"download_bytes"`
		ReloadedWidest string   `json:"reloaded_widest"`
		PageErrors     []string `json:"page_errors"`
	}
	b.run(t, "auth.mjs", &r, "FLIGHTREC_URL="+srv.url, "FLIGHTREC_READ_TOKEN="+readToken)
	if !strings.Contains(r.FormReason, "read") {
		t.Errorf("token form says %q, want it to name the read scope", r.FormReason)
	}
	if !r.WrongKeptForm {
		t.Error("a wrong token drew a flamegraph or lost the token form")
	}
	if r.Widest != "main.hot" || r.ReloadedWidest != "main.hot" {
		t.Errorf("widest frame with the token %q, after a reload %q; want main.hot", r.Widest, r.ReloadedWidest)
	}
	if r.DownloadBytes < 50 {
		t.Errorf("pprof download with the token: %d bytes", r.DownloadBytes)
	}
	if len(r.PageErrors) > 0 {
		t.Errorf("script errors: %q", r.PageErrors)
	}
}
