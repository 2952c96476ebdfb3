package otlp

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Another ingest path registering the same counters gets the same ones.
	again, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if again.Requests != m.Requests || again.Rejected != m.Rejected {
		t.Error("second NewMetrics did not reuse the registered counters")
	}

	url := startHTTP(t, &recordingSink{}, WithMetrics(m))
	client, _ := startGRPC(t, &recordingSink{}, nil, WithMetrics(m))
	pb := marshal(t, testRequest())
	post(t, url, pb, map[string]string{"Content-Type": "application/x-protobuf"})
	post(t, url, pb, map[string]string{"Content-Type": "text/plain"})
	if _, err := client.Export(context.Background(), testRequest()); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"http requests", m.Requests.WithLabelValues(FormatHTTP), 2},
		{"http bytes", m.Bytes.WithLabelValues(FormatHTTP), float64(len(pb))},
		{"http profiles", m.Profiles.WithLabelValues(FormatHTTP), 4},
		{"http samples", m.Samples.WithLabelValues(FormatHTTP), 7}, // stacks stored
		{"http rejected", m.Rejected.WithLabelValues(FormatHTTP, "unsupported"), 1},
		{"grpc requests", m.Requests.WithLabelValues(FormatGRPC), 1},
		{"grpc bytes", m.Bytes.WithLabelValues(FormatGRPC), float64(len(pb))},
		{"grpc profiles", m.Profiles.WithLabelValues(FormatGRPC), 4},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "flightrec_ingest_requests_total", "flightrec_ingest_rejected_total"); err != nil || n != 3 {
		t.Errorf("gathered %d series (%v), want 3", n, err)
	}
}
