package e2e

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flightrec/flightrec/server/snapshots/snaptest"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// frameShare is a flamegraph's widest frame at some depth, as
// ui/test/browser/snapshots.mjs reads it from the page's test hook.
type frameShare struct {
	Name  string  `json:"name"`
	Share float64 `json:"share"` // of the root's width
	Total float64 `json:"total"` // the root's value, ns
}

// uiSnapshotsResult is the summary snapshots.mjs prints as its last line.
type uiSnapshotsResult struct {
	ListIDs         []string   `json:"list_ids"`
	ListReasons     []string   `json:"list_reasons"`
	FilteredIDs     []string   `json:"filtered_ids"`
	EmptyMessage    string     `json:"empty_message"`
	UnknownError    string     `json:"unknown_error"` // the page of an id the server does not have
	Reason          string     `json:"reason"`
	StepNS          int64      `json:"step_ns"`
	Lanes           []string   `json:"lanes"`
	Markers         []string   `json:"markers"` // kind@lane
	SignalTooltip   string     `json:"signal_tooltip"`
	ExpandedLanes   []string   `json:"expanded_lanes"`
	ExpandedMarkers []string   `json:"expanded_markers"`
	WFrom           string     `json:"wfrom"`
	WTo             string     `json:"wto"`
	Window          frameShare `json:"window"`
	WindowTitle     string     `json:"window_title"`
	PprofHref       string     `json:"pprof_href"`
	Compare         []struct {
		Fn    string  `json:"fn"`
		Delta float64 `json:"delta"`
	} `json:"compare"`
	DiffStates   map[string]string `json:"diff_states"`
	TotalHandle  float64           `json:"compare_total_handle"` // main.handle's Δ by total
	ChosenStepNS int64             `json:"chosen_step_ns"`       // after choosing 100ms
	ThreadWindow frameShare        `json:"thread_window"`
	OffCPUWindow frameShare        `json:"off_cpu_window"`
	Reloaded     frameShare        `json:"reloaded"`
	Screenshots  []string          `json:"screenshots"`
	PageErrors   []string          `json:"page_errors"`
}

// TestUISnapshots drives the Snapshots view in Debian's chromium against a
// real server holding snaptest's snapshot, whose every number is known (see
// its doc): the list, the lanes and markers of its timeline, the flamegraph
// of a window dragged from the trigger to the end (on-CPU: runtime.mallocgc
// 4 samples of 5), of one thread of it (3 of 4) and of its off-CPU time
// (100 ms of unknown stack), and before/after the trigger (mallocgc 20% →
// 80%). Screenshots go to $FLIGHTREC_UI_ARTIFACTS (default e2e/artifacts/ui).
func TestUISnapshots(t *testing.T) {
	b := newBrowserTest(t)
	srv := startServer(t, t.TempDir())
	// Whole seconds: the start is then exact as a JavaScript number, so the
	// window the page sends is exactly start+1s … start+2s.
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	id := fmt.Sprintf("n1-%d-ui", start.Add(snaptest.Trigger).UnixNano())
	other := fmt.Sprintf("n2-%d-ui", start.Add(-time.Minute).UnixNano())
	uploadSnapshot(t, srv, snaptest.Snapshot(id, start))
	uploadSnapshot(t, srv, olderSnapshot(other, start.Add(-time.Minute)))

	var r uiSnapshotsResult
	b.run(t, "snapshots.mjs", &r, "FLIGHTREC_URL="+srv.url, "SNAPSHOT_ID="+id, "OTHER_ID="+other)
	t.Logf("screenshots in %s: %s", b.artifacts, strings.Join(r.Screenshots, ", "))
	checkSnapshotList(t, r, id, other)
	checkSnapshotTimeline(t, r)
	checkSnapshotWindow(t, r, start)
	checkSnapshotCompare(t, r)
	if len(r.PageErrors) > 0 {
		t.Errorf("errors in the pages: %v", r.PageErrors)
	}
}

// olderSnapshot is snaptest's snapshot moved to another node, triggered by
// hand, its processes relabelled as service web: the list's second row and
// the only match of {service="web"}.
func olderSnapshot(id string, start time.Time) *snapshot.Snapshot {
	s := snaptest.Snapshot(id, start)
	s.Node = "n2"
	s.Trigger = snapshot.Trigger{Kind: "manual", Reason: "checking web by hand", TimeNS: start.Add(snaptest.Trigger).UnixNano(), Selector: `{service="web"}`}
	for i := range s.Processes {
		s.Processes[i].Labels = map[string]string{"service": "web", "node": "n2"}
	}
	return s
}

func uploadSnapshot(t *testing.T, srv *serverProc, s *snapshot.Snapshot) {
	t.Helper()
	code, answer := post(t, srv.url+"/api/v1/snapshots", snaptest.Encode(t, s), "Content-Type", "application/json", "Content-Encoding", "gzip")
	if code != 201 {
		t.Fatalf("upload snapshot %s: %d %s", s.ID, code, answer)
	}
}

func checkSnapshotList(t *testing.T, r uiSnapshotsResult, id, other string) {
	t.Helper()
	if !slices.Equal(r.ListIDs, []string{id, other}) || len(r.ListReasons) != 2 || r.ListReasons[0] != "APIErrorBudgetBurn" {
		t.Errorf("list: %v with reasons %q; want [%s %s], newest first, the first APIErrorBudgetBurn", r.ListIDs, r.ListReasons, id, other)
	}
	if !slices.Equal(r.FilteredIDs, []string{other}) {
		t.Errorf(`list filtered by {service="web"}: %v, want [%s]`, r.FilteredIDs, other)
	}
	if !strings.Contains(r.EmptyMessage, `No snapshots match {service="nope"}`) {
		t.Errorf("empty list says %q, want why", r.EmptyMessage)
	}
	if !strings.Contains(r.UnknownError, "snapshot nope") || !strings.Contains(r.UnknownError, "no such snapshot") {
		t.Errorf("page of an unknown snapshot says %q, want the server's not found", r.UnknownError)
	}
}

func checkSnapshotTimeline(t *testing.T, r uiSnapshotsResult) {
	t.Helper()
	if r.Reason != "APIErrorBudgetBurn" {
		t.Errorf("snapshot header reason %q", r.Reason)
	}
	// 2 s over a canvas of about 1150 px: 5.7 ms wanted a step, 10 ms chosen.
	if r.StepNS != 10_000_000 || r.ChosenStepNS != 100_000_000 {
		t.Errorf("timeline step %d ns, then %d ns once 100ms is chosen; want 10ms, 100ms", r.StepNS, r.ChosenStepNS)
	}
	// Process 100 crashed (SIGSEGV, exit by signal) so it comes first.
	if !slices.Equal(r.Lanes, []string{"100", "200"}) {
		t.Errorf("lanes %v, want [100 200]", r.Lanes)
	}
	wantMarkers := []string{"exec@200", "signal@100", "exit@100"}
	if !slices.Equal(r.Markers, wantMarkers) {
		t.Errorf("markers %v, want %v", r.Markers, wantMarkers)
	}
	for _, want := range []string{"SIGSEGV (11)", "tid 101", "+500ms from the trigger", "main.parse", "main.handle", "main.main"} {
		if !strings.Contains(r.SignalTooltip, want) {
			t.Errorf("signal tooltip %q lacks %q", r.SignalTooltip, want)
		}
	}
	if !slices.Equal(r.ExpandedLanes, []string{"100", "100/101", "100/102", "200"}) {
		t.Errorf("lanes with 100 expanded %v, want [100 100/101 100/102 200]", r.ExpandedLanes)
	}
	if !slices.Contains(r.ExpandedMarkers, "signal@100/101") {
		t.Errorf("markers with 100 expanded %v lack the signal on thread 101", r.ExpandedMarkers)
	}
}

func checkSnapshotWindow(t *testing.T, r uiSnapshotsResult, start time.Time) {
	t.Helper()
	wantFrom, wantTo := strconv.FormatInt(start.Add(time.Second).UnixNano(), 10), strconv.FormatInt(start.Add(2*time.Second).UnixNano(), 10)
	if r.WFrom != wantFrom || r.WTo != wantTo {
		t.Errorf("dragged window %s … %s, want %s … %s (trigger to end, snapped to steps)", r.WFrom, r.WTo, wantFrom, wantTo)
	}
	checkFrame(t, "window", r.Window, "runtime.mallocgc", 0.8, 50e6)
	checkFrame(t, "window after reload", r.Reloaded, "runtime.mallocgc", 0.8, 50e6)
	checkFrame(t, "thread 101's window", r.ThreadWindow, "runtime.mallocgc", 0.75, 40e6)
	checkFrame(t, "off-CPU window", r.OffCPUWindow, "[unknown stack]", 1, 100e6)
	if !strings.Contains(r.WindowTitle, "+0ms … +1s from the trigger") {
		t.Errorf("window title %q does not say the window", r.WindowTitle)
	}
	if !strings.Contains(r.PprofHref, "/pprof?") || !strings.Contains(r.PprofHref, "from="+wantFrom) || !strings.Contains(r.PprofHref, "to="+wantTo) {
		t.Errorf("pprof link %q is not of the window", r.PprofHref)
	}
}

func checkFrame(t *testing.T, what string, got frameShare, name string, share, total float64) {
	t.Helper()
	if got.Name != name || math.Abs(got.Share-share) > 0.01 || got.Total != total {
		t.Errorf("%s: widest frame %q at %.3f of %v ns, want %s at %.2f of %v ns", what, got.Name, got.Share, got.Total, name, share, total)
	}
}

func checkSnapshotCompare(t *testing.T, r uiSnapshotsResult) {
	t.Helper()
	delta := map[string]float64{}
	for _, c := range r.Compare {
		delta[c.Fn] = c.Delta
	}
	if len(r.Compare) == 0 || r.Compare[0].Fn != "runtime.mallocgc" || delta["runtime.mallocgc"] != 60 || delta["main.parse"] != -40 {
		t.Errorf("before/after table %+v: want runtime.mallocgc first at +60 points, main.parse -40", r.Compare)
	}
	if r.DiffStates["runtime.mallocgc"] != "more" || r.DiffStates["main.parse"] != "less" {
		t.Errorf("diff flamegraph leaves %v: want runtime.mallocgc more, main.parse less", r.DiffStates)
	}
	// By total, main.handle goes from 40 of 50 ms (libc is outside it) to all.
	if r.TotalHandle != 20 {
		t.Errorf("before/after by total: main.handle %+v points, want +20", r.TotalHandle)
	}
}
