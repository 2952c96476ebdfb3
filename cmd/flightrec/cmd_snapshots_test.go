package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flightrec/flightrec/server/snapshots"
	"github.com/flightrec/flightrec/server/snapshots/snaptest"
	"github.com/flightrec/flightrec/wire/snapshot"
)

// snapshotServer serves the snapshot API holding the snaptest snapshot as
// "s1", triggered at trigger, and a second one, "s0", a minute before it
// on node n2; it returns the URL and s1 as uploaded.
func snapshotServer(t *testing.T) (url string, s1 []byte, trigger time.Time) {
	t.Helper()
	mux := http.NewServeMux()
	st, err := snapshots.Register(mux, snapshots.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	old := snaptest.Snapshot("s0", start.Add(-time.Minute))
	old.Node, old.Trigger = "n2", snapshot.Trigger{Kind: "manual", Reason: "checkout\nslow", TimeNS: old.StartNS + 1e9}
	for _, p := range old.Processes {
		p.Labels["node"] = "n2"
	}
	for _, s := range []*snapshot.Snapshot{old, snaptest.Snapshot("s1", start)} {
		s1 = snaptest.Encode(t, s)
		if _, _, err := st.Put(s1, s); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL, s1, start.Add(snaptest.Trigger)
}

// squeeze collapses runs of spaces, so that checks do not depend on
// column widths.
func squeeze(s string) string { return regexp.MustCompile(` +`).ReplaceAllString(s, " ") }

func TestSnapshotsCommand(t *testing.T) {
	url, _, trigger := snapshotServer(t)
	at := func(d time.Duration) string { return trigger.Add(d).UTC().Format(time.RFC3339) }
	tests := []struct {
		args   []string
		stdout string
		stderr string
	}{
		{nil, "TIME ID NODE TRIGGER REASON\n" +
			at(0) + " s1 n1 alert APIErrorBudgetBurn\n" +
			at(-time.Minute) + " s0 n2 manual checkout slow\n", ""},
		{[]string{"--limit", "1"}, "TIME ID NODE TRIGGER REASON\n" + at(0) + " s1 n1 alert APIErrorBudgetBurn\n(1 of 2; --limit shows more)\n", ""},
		{[]string{"--selector", `{node="n2"}`, "--since", "-2h"}, "TIME ID NODE TRIGGER REASON\n" + at(-time.Minute) + " s0 n2 manual checkout slow\n", ""},
		{[]string{"--since", "-30m"}, "", "no snapshots match\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"snapshots", "--server", url}, tt.args...)...)
			if code != 0 || squeeze(stdout) != tt.stdout || stderr != tt.stderr {
				t.Errorf("exit %d, stdout\n%s\nstderr %q; want\n%s", code, stdout, stderr, tt.stdout)
			}
		})
	}
}

func TestSnapshotGet(t *testing.T) {
	url, s1, _ := snapshotServer(t)
	file := filepath.Join(t.TempDir(), "s1.json.gz")
	code, _, stderr := runCLI(t, "snapshot", "get", "s1", "--server", url, "-o", file)
	got, _ := os.ReadFile(file)
	if code != 0 || !bytes.Equal(got, s1) || stderr != "wrote "+file+" ("+strconv.Itoa(len(s1))+" bytes, gzipped JSON)\n" {
		t.Errorf("exit %d, stderr %q, %d bytes written, want the %d uploaded", code, stderr, len(got), len(s1))
	}
	if _, err := snapshot.Decode(got, snapshot.DefaultLimits); err != nil {
		t.Errorf("written file: %v", err)
	}
}

func TestSnapshotPprof(t *testing.T) {
	url, _, _ := snapshotServer(t)
	dir := t.TempDir()
	tests := []struct {
		args  []string
		total int64
		msg   string
	}{
		{[]string{"--from", "-1s", "--to", "+0s"}, 50_000_000, ": 3 samples, 50ms cpu from "},
		{[]string{"--type", "off_cpu", "--pid", "100"}, 350_000_000, ": 2 samples, 350ms off_cpu from "},
		{[]string{"--pid", "100", "--tid", "102"}, 10_000_000, ": 1 samples, 10ms cpu from "},
		{[]string{"--pid", "999"}, 0, ": empty profile: no cpu time in the snapshot"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			file := filepath.Join(dir, "p.pb.gz")
			code, _, stderr := runCLI(t, append([]string{"snapshot", "pprof", "s1", "--server", url, "-o", file}, tt.args...)...)
			data, _ := os.ReadFile(file)
			if code != 0 || !strings.HasPrefix(stderr, "wrote "+file+tt.msg) || profileTotal(t, data) != tt.total {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
		})
	}
}

func TestSnapshotTimeline(t *testing.T) {
	url, _, trigger := snapshotServer(t)
	code, stdout, stderr := runCLI(t, "snapshot", "timeline", "s1", "--server", url)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	want := []string{
		"snapshot s1 of node n1\n",
		"window " + trigger.Add(-time.Second).UTC().Format(time.RFC3339Nano) + ", 2s: -1s to +1s from the trigger\n",
		`trigger alert: APIErrorBudgetBurn (selector {service="api"}, server id t-1-1)` + "\n",
		"stats 0 lost samples, 0 ring records evicted, 1 unknown stacks\n",
		"on-CPU time per column of 100ms, v marking the trigger:\n",
		"PID CPU OFF-CPU PROCESS v\n",
		// 20 steps of 100 ms, one column each; the busiest column, 20ms, is full.
		"100 90ms blocked 250ms, sleep 100ms api (pod api-1) ▄▄▄▄ █▄▄▄\n",
		"200 10ms preempted 50ms db ▄\n",
		"events (time from the trigger):\n",
		" -990ms exec pid 200 db /usr/bin/db\n",
		" +500ms signal pid 100 tid 101 api signal 11 (segmentation fault) at address 0x10 in main.parse < main.handle < main.main\n",
		" +600ms exit pid 100 api killed by signal 11 (segmentation fault) (core dumped)\n",
	}
	got := squeeze(stdout)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, stdout)
		}
	}
	code, stdout, _ = runCLI(t, "snapshot", "timeline", "s1", "--server", url, "--pid", "200", "--step", "1s")
	if got := squeeze(stdout); code != 0 || !strings.Contains(got, "200 10ms preempted 50ms db █\n") || strings.Contains(got, "\n100 ") ||
		strings.Contains(got, "signal") {
		t.Errorf("--pid 200: exit %d\n%s", code, stdout)
	}
}

func TestSnapshotExitCodes(t *testing.T) {
	url, _, _ := snapshotServer(t)
	srv := "--server=" + url
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"snapshot"}, 2, "missing subcommand: get, pprof or timeline"},
		{[]string{"snapshot", "frob", "s1"}, 2, `unknown subcommand "frob"`},
		{[]string{"snapshot", "get", srv}, 2, "want one snapshot ID, got 0 arguments"},
		{[]string{"snapshot", "pprof", srv, "s1", "--type", "heap"}, 2, `--type "heap": want cpu or off_cpu`},
		{[]string{"snapshot", "pprof", srv, "s1", "--from", "yesterday"}, 2, `--from: bad time "yesterday"`},
		{[]string{"snapshot", "timeline", srv, "s1", "--step", "1us"}, 2, "--step 1µs: want at least 1ms"},
		{[]string{"snapshots", srv, "--since", "bogus"}, 2, `--since: bad time "bogus"`},
		{[]string{"snapshots", srv, "--limit", "0"}, 2, "--limit 0"},
		{[]string{"snapshots", srv, "--selector", "{a=}"}, 2, "--selector: invalid selector"},
		{[]string{"snapshots", srv, "{}"}, 2, `unexpected argument "{}"`},
		{[]string{"snapshot", "get", srv, "nope"}, 1, "GET /api/v1/snapshots/nope: 404 Not Found: no such snapshot"},
		{[]string{"snapshot", "pprof", srv, "s1", "--from", "+1s", "--to", "-1s"}, 1, "400 Bad Request: from ("},
		{[]string{"snapshot", "get", srv, "s1", "-o", filepath.Join(t.TempDir(), "no", "f")}, 1, "write snapshot: open"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.msg)
			}
		})
	}
}
