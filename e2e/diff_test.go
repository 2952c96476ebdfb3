package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// TestDiffGate runs a canary gate as a pipeline would: pods of two tracks
// upload pprof files through `flightrec upload`, then `flightrec diff`
// exits 1 on the canary's slower function, 0 when the threshold is above
// the change, and writes profiles pprof can diff.
func TestDiffGate(t *testing.T) {
	srv := startServer(t, t.TempDir())
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(6, 6))
	for _, track := range []string{"baseline", "canary"} {
		for pod := range 5 {
			var files []string
			for k := range 3 {
				f := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.pb.gz", track, pod, k))
				writeShopProfile(t, f, rng, track == "canary", time.Now().Add(-5*time.Minute+time.Duration(k)*10*time.Second))
				files = append(files, f)
			}
			labels := fmt.Sprintf(`{service="shop",track=%q,pod="shop-%s-%d"}`, track, track, pod)
			up := startCmd(t, serverBin, append([]string{"upload", "--server", srv.url, "--labels", labels}, files...)...)
			if up.wait(t, time.Minute) != 0 {
				t.Fatalf("upload: %s", up)
			}
		}
	}
	out := filepath.Join(dir, "diff.pb.gz")
	gate := func(failOn string, extra ...string) *agentProc {
		args := append([]string{"diff", "--server", srv.url, "--from", "-15m", "--fail-on", failOn,
			"--base", `cpu{service="shop",track="baseline"}`, "--target", `cpu{service="shop",track="canary"}`}, extra...)
		p := startCmd(t, serverBin, args...)
		p.wait(t, time.Minute)
		return p
	}
	p := gate("self>2pp", "--json", "-o", out)
	var d struct {
		Status  string
		Changes []struct {
			Function, Metric, Verdict string
			Delta                     float64
		}
	}
	if p.code != 1 || json.Unmarshal([]byte(p.stdout.String()), &d) != nil || d.Status != "ok" || len(d.Changes) == 0 {
		t.Fatalf("self>2pp: want exit 1 and JSON: %s", p)
	}
	if c := d.Changes[0]; c.Function != "shop.compress" || c.Metric != "self" || c.Verdict != "regression" || c.Delta < 0.03 {
		t.Errorf("top change %+v, want shop.compress self regression of ~4 points", c)
	}
	for _, f := range []string{out, strings.TrimSuffix(out, ".pb.gz") + ".base.pb.gz"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("-o: %v", err)
		}
	}
	if p := gate("self>10pp"); p.code != 0 || !strings.Contains(p.stdout.String(), "gate self>10pp: pass") {
		t.Errorf("self>10pp: want exit 0: %s", p)
	}
}

// writeShopProfile writes a 10 s CPU profile of a shop pod: handle calls
// parse (50%) and compress (10%, 14% on the canary), with a few percent of
// jitter per stack.
func writeShopProfile(t *testing.T, path string, rng *rand.Rand, canary bool, at time.Time) {
	t.Helper()
	fn := func(id uint64, name string) *profile.Function {
		return &profile.Function{ID: id, Name: name, SystemName: name, Filename: "shop.go"}
	}
	main, handle, parse, compress := fn(1, "main.main"), fn(2, "shop.handle"), fn(3, "shop.parse"), fn(4, "shop.compress")
	loc := func(id uint64, f *profile.Function) *profile.Location {
		return &profile.Location{ID: id, Line: []profile.Line{{Function: f, Line: 1}}}
	}
	lm, lh, lp, lc := loc(1, main), loc(2, handle), loc(3, parse), loc(4, compress)
	share := []float64{0.5, 0.1, 0.4} // parse, compress, handle itself
	if canary {
		share = []float64{0.5 * 0.86 / 0.9, 0.14, 0.4 * 0.86 / 0.9}
	}
	const ms10 = int64(10 * time.Millisecond)
	sample := func(s float64, locs ...*profile.Location) *profile.Sample {
		n := int64(1000 * s * (1 + 0.03*rng.NormFloat64()))
		return &profile.Sample{Location: locs, Value: []int64{n * ms10}}
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: ms10,
		TimeNanos: at.UnixNano(), DurationNanos: int64(10 * time.Second),
		Sample: []*profile.Sample{
			sample(share[0], lp, lh, lm), sample(share[1], lc, lh, lm), sample(share[2], lh, lm),
		},
		Location: []*profile.Location{lm, lh, lp, lc},
		Function: []*profile.Function{main, handle, parse, compress},
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
}
