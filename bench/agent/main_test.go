package main

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func TestParseConfigs(t *testing.T) {
	cs, err := parseConfigs("19, 99,99churn,99")
	if err != nil {
		t.Fatal(err)
	}
	want := []config{{"19", 19, 0}, {"99", 99, 0}, {"99churn", 99, churnRate}}
	if len(cs) != len(want) {
		t.Fatalf("got %v, want %v", cs, want)
	}
	for i := range want {
		if cs[i] != want[i] {
			t.Errorf("config %d: got %+v, want %+v", i, cs[i], want[i])
		}
	}
	for _, bad := range []string{"", "churn", "0", "1001", "99x", "-5"} {
		if _, err := parseConfigs(bad); err == nil {
			t.Errorf("parseConfigs(%q): no error", bad)
		}
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want spread
	}{
		{[]float64{3, 1, 2}, spread{2, 1, 3}},
		{[]float64{4, 1, 2, 3}, spread{2.5, 1, 4}},
		{[]float64{5}, spread{5, 5, 5}},
	} {
		if got := summarize(tc.in); got != tc.want {
			t.Errorf("summarize(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := (spread{0.1834, 0.17, 0.2}).format(3, 3); got != "0.183 [0.170–0.200]" {
		t.Errorf("format: %q", got)
	}
	if got := (spread{0.1834, 0.1834, 0.1834}).format(2, 1); got != "0.18" {
		t.Errorf("format one run: %q", got)
	}
}

func TestParseStat(t *testing.T) {
	// comm with spaces and parentheses; utime=150 stime=50 ticks.
	line := "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 12345 1000 100 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(200 / clockTicks * float64(time.Second)); got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("garbage")); err == nil {
		t.Error("no error for garbage")
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tx\nVmPeak:\t  2000 kB\nVmHWM:\t    1536 kB\nVmRSS:\t 1024 kB\n"
	got, err := parseStatusKB([]byte(status), "VmHWM")
	if err != nil || got != 1536<<10 {
		t.Errorf("got %d, %v; want %d", got, err, 1536<<10)
	}
	if _, err := parseStatusKB([]byte(status), "VmSwap"); err == nil {
		t.Error("no error for a missing key")
	}
}

func TestParseFdinfo(t *testing.T) {
	info := parseFdinfo([]byte("pos:\t0\nflags:\t02000002\nprog_type:\t7\nprog_id:\t42\nrun_time_ns:\t123456\nrun_cnt:\t789\n"))
	if info["prog_id"] != "42" || atou(info["run_time_ns"]) != 123456 || atou(info["run_cnt"]) != 789 {
		t.Errorf("parsed %v", info)
	}
}

// The process CPU clock and /proc/PID/stat must agree to within a tick or
// two: they are the same quantity at different resolutions.
func TestProcessCPUMatchesStat(t *testing.T) {
	// Spin until the clock shows 50 ms (the machine may be busy).
	pid := os.Getpid()
	var precise time.Duration
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if precise, err = processCPU(pid); err != nil {
			t.Fatal(err)
		}
		if precise >= 50*time.Millisecond {
			break
		}
	}
	ticks, err := statCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if diff := precise - ticks; diff < -30*time.Millisecond || diff > 30*time.Millisecond {
		t.Errorf("process CPU clock %v, /proc stat %v", precise, ticks)
	}
	if precise < 50*time.Millisecond {
		t.Errorf("process CPU clock %v after 10 s of spinning", precise)
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"bin/bench-agent", "-agent", "bin/flightrec-agent", "-configs", "19,99", "-out", "a b", "it's"})
	want := `bin/bench-agent -agent bin/flightrec-agent -configs 19,99 -out 'a b' 'it'\''s'`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestReportTargets(t *testing.T) {
	c := config{"99", 99, 0}
	rs := []*result{
		{Config: c, Run: 1, CPU: 300 * time.Millisecond, Wall: time.Minute, PeakRSS: 40 * mib, StartupCPU: 100 * time.Millisecond},
		{Config: c, Run: 2, CPU: 240 * time.Millisecond, Wall: time.Minute, PeakRSS: 50 * mib, StartupCPU: 100 * time.Millisecond, Lost: 3},
		{Config: c, Run: 3, CPU: 600 * time.Millisecond, Wall: time.Minute, PeakRSS: 40 * mib, StartupCPU: 100 * time.Millisecond},
	}
	rp := &report{Configs: []config{c}, Results: map[string][]*result{"99": rs}}
	got := map[string]bool{}
	for _, v := range rp.targets() {
		got[strings.Fields(v.Text)[0]+" "+strings.Fields(v.Text)[1]] = v.Pass
	}
	// Median CPU is 0.5% (0.3 s/min): on the budget, so PASS despite a 1% run.
	for k, want := range map[string]bool{"agent CPU": true, "peak RSS": false, "BPF maps": true, "start-up ≤": true, "zero samples": false} {
		if pass, ok := got[k]; !ok || pass != want {
			t.Errorf("%s: pass=%v (present %v), want %v; all %v", k, pass, ok, want, got)
		}
	}
}

func TestSinkCountsDistinctProfiles(t *testing.T) {
	s, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	// The agent's sample types: only samples/count is counted, not the
	// nanoseconds of off-CPU and CPU time around it.
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "off_cpu", Unit: "nanoseconds"},
			{Type: "samples", Unit: "count"},
			{Type: "cpu", Unit: "nanoseconds"},
		},
		Sample: []*profile.Sample{{Value: []int64{3e6, 7, 7e7}}, {Value: []int64{0, 5, 5e7}}},
	}
	var body bytes.Buffer
	if err := p.Write(&body); err != nil {
		t.Fatal(err)
	}
	post := func(key string, b []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/ingest/agent", bytes.NewReader(b))
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %s", resp.Status)
		}
	}
	post("a-1", body.Bytes())
	post("a-1", body.Bytes()) // a retry
	post("a-2", body.Bytes())
	post("", []byte("not a profile"))
	got := s.snapshot()
	want := sinkStats{Profiles: 3, Duplicates: 1, Bytes: int64(3*body.Len() + len("not a profile")), Samples: 24, Bad: 1}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	s.reset()
	if got := s.snapshot(); got != (sinkStats{}) {
		t.Errorf("after reset: %+v", got)
	}
}
