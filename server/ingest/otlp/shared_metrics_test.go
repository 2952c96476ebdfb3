package otlp_test

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/server/ingest"
	"github.com/flightrec/flightrec/server/ingest/otlp"
)

// The server registers package ingest's counters and this package's on one
// registry, in either order: the descriptors must be identical.
func TestMetricsSharedWithIngest(t *testing.T) {
	for _, ingestFirst := range []bool{true, false} {
		reg := prometheus.NewPedanticRegistry()
		h := &ingest.Handler{Metrics: reg}
		if ingestFirst {
			h.Register(http.NewServeMux())
		}
		m, err := otlp.NewMetrics(reg)
		if err != nil {
			t.Fatalf("ingest first %v: %v", ingestFirst, err)
		}
		if !ingestFirst {
			h.Register(http.NewServeMux()) // panics on a conflicting descriptor
		}
		m.Requests.WithLabelValues(otlp.FormatHTTP).Inc()
		m.Rejected.WithLabelValues(otlp.FormatGRPC, "too_large").Inc()
		if _, err := reg.Gather(); err != nil {
			t.Errorf("ingest first %v: gather: %v", ingestFirst, err)
		}
	}
}
