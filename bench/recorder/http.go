package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Agent metric names (agent/metrics.go, agent/recorder/recorder.go).
const (
	metricRingBytes   = "flightrec_agent_recorder_bytes"
	metricRingRecords = "flightrec_agent_recorder_records"
	metricRingEvicted = "flightrec_agent_recorder_evicted_records_total"
	metricOffCPU      = "flightrec_agent_bpf_offcpu_intervals_total"
	metricOffCPUShort = "flightrec_agent_bpf_offcpu_short_total"
	metricOffCPULost  = "flightrec_agent_bpf_offcpu_lost_total"
	metricSamplesLost = "flightrec_agent_bpf_samples_lost_total"
	metricSnapshots   = "flightrec_agent_snapshots_built_total"
	metricGCs         = "go_gc_duration_seconds_count" // the summary's count
)

var client = &http.Client{Timeout: 10 * time.Second}

// do sends a request and returns the body of a 2xx answer.
func do(ctx context.Context, method, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, body)
	}
	return body, nil
}

// getJSON decodes the answer of a GET into v.
func getJSON(ctx context.Context, url string, v any) error {
	body, err := do(ctx, http.MethodGet, url)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// scrape fetches Prometheus text metrics: each family's value summed over
// its series (counters, gauges, untyped), and NAME_count for summaries.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	body, err := do(ctx, http.MethodGet, url)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			out[name] += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
			if m.Summary != nil {
				out[name+"_count"] += float64(m.GetSummary().GetSampleCount())
			}
		}
	}
	return out, nil
}

// freeAddr returns a loopback address nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
