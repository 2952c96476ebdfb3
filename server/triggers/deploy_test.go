package triggers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/internal/testenv"
	"github.com/flightrec/flightrec/server/triggers"
)

// deployDir holds the Prometheus rules and Alertmanager config these tests
// check with the real tools, from Debian's prometheus and
// prometheus-alertmanager packages; without them the tests skip.
const deployDir = "../../deploy/prometheus"

// tool finds a binary (see testenv.Tool).
func tool(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	return testenv.Tool(t, pkg, names...)
}

func runTool(t *testing.T, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = deployDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
}

func TestPrometheusRules(t *testing.T) {
	promtool := tool(t, "prometheus", "promtool")
	runTool(t, promtool, "check", "rules", "slo-rules.yml")
	// Which burn rates page and which open tickets, with the routing labels.
	runTool(t, promtool, "test", "rules", "slo-rules.test.yml")
}

func TestAlertmanagerConfig(t *testing.T) {
	runTool(t, tool(t, "prometheus-alertmanager", "amtool"), "check-config", "alertmanager.yml")
}

// TestRealAlertmanager runs Alertmanager with the shipped config, its
// webhook pointed at the trigger endpoint over a real store, fires an SLO
// alert through Alertmanager's API and waits for the trigger to be queued
// for the nodes of the alert's service.
func TestRealAlertmanager(t *testing.T) {
	bin := tool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	s, webhooks := serveCounting(t)
	am := startAlertmanager(t, bin, s.URL)

	now := time.Now().UTC()
	alerts := []map[string]any{
		{"labels": map[string]string{"alertname": "ErrorBudgetBurn", "service": "api", "severity": "page", "slo": "availability", "flightrec": "capture"},
			"annotations": map[string]string{"summary": "api burns its error budget fast"}, "startsAt": now, "generatorURL": "http://prometheus/graph"},
		// Not labelled for flightrec: routed to the default receiver only.
		{"labels": map[string]string{"alertname": "ErrorBudgetBurn", "service": "db", "severity": "page"}, "startsAt": now},
	}
	body, _ := json.Marshal(alerts)
	resp, err := http.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := s.Svc.Queue().Wait(ctx, "n1", "", 30*time.Second)
	if err != nil || len(got) != 1 {
		t.Fatalf("no trigger for n1 from Alertmanager within 30s (%v); webhooks received: %d", err, webhooks.Load())
	}
	tr := got[0]
	if tr.Kind != "alert" || tr.Selector != `{service="api"}` || tr.Fingerprint == "" || tr.Labels["severity"] != "page" ||
		tr.Reason != "ErrorBudgetBurn (api burns its error budget fast)" {
		t.Errorf("trigger %+v", tr)
	}
	if other, _ := s.Svc.Queue().Wait(context.Background(), "n2", "", 0); len(other) != 1 || other[0].ID != tr.ID {
		t.Errorf("n2, also running api, got %+v", other)
	}
	time.Sleep(time.Second) // time for a misrouted db alert to arrive
	if db, _ := s.Svc.Queue().Wait(context.Background(), "n3", "", 0); db != nil {
		t.Errorf("the db alert, not labelled for flightrec, reached it: %+v", db)
	}
}

// serveCounting serves the trigger endpoints over the fleet store,
// counting the webhooks that arrive.
func serveCounting(t *testing.T) (*server, *atomic.Int32) {
	t.Helper()
	reg := prometheus.NewRegistry()
	svc := triggers.New(triggers.StoreResolver{Store: fleetStore(t, time.Now())}, triggers.Config{Registerer: reg})
	mux := http.NewServeMux()
	svc.Register(mux, nil)
	var n atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == triggers.AlertmanagerPath {
			n.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return &server{URL: hs.URL, Svc: svc, Reg: reg}, &n
}

// startAlertmanager runs bin on a free loopback port with the shipped
// config, its webhook sent to flightrec at url, and returns its base URL
// once it is ready.
func startAlertmanager(t *testing.T, bin, url string) string {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(deployDir, "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "alertmanager.yml")
	if !bytes.Contains(cfg, []byte("http://flightrec:7070")) {
		t.Fatal("alertmanager.yml no longer sends to http://flightrec:7070")
	}
	os.WriteFile(cfgFile, bytes.ReplaceAll(cfg, []byte("http://flightrec:7070"), []byte(url)), 0o644)
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=debug")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager's log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready on %s after 20s:\n%s", addr, logs.String())
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr())
}
