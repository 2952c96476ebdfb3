package otlp

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/server/model"
)

// Values of the format label for this package's two endpoints.
const (
	FormatHTTP = "otlp_http"
	FormatGRPC = "otlp_grpc"
)

// Metrics are the ingest counters, shared by every ingest path and told apart
// by their format label. A server creates them once, with NewMetrics or from
// vectors of the same names and labels made elsewhere, and hands the same
// Metrics to each path: registering the names twice would fail.
type Metrics struct {
	Requests *prometheus.CounterVec // flightrec_ingest_requests_total{format}
	Bytes    *prometheus.CounterVec // flightrec_ingest_bytes_total{format}: HTTP bodies as received, gRPC messages decompressed
	Profiles *prometheus.CounterVec // flightrec_ingest_profiles_total{format}: model profiles stored
	Samples  *prometheus.CounterVec // flightrec_ingest_samples_total{format}: stacks stored
	Rejected *prometheus.CounterVec // flightrec_ingest_rejected_total{format,reason}
}

// NewMetrics creates the ingest counters and registers them with reg unless
// reg is nil. Counters reg already has (same name, help and labels, as
// package ingest registers them) are reused: every ingest path may call
// NewMetrics, or register its own, on the same reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Requests: counter("flightrec_ingest_requests_total", "Ingest requests received."),
		Bytes:    counter("flightrec_ingest_bytes_total", "Request body bytes received, as sent (compressed)."),
		Profiles: counter("flightrec_ingest_profiles_total", "Profiles (one type and series each) stored."),
		Samples:  counter("flightrec_ingest_samples_total", "Stacks with their values stored."),
		Rejected: counter("flightrec_ingest_rejected_total", "Ingest requests refused, nothing of them stored.", "reason"),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []**prometheus.CounterVec{&m.Requests, &m.Bytes, &m.Profiles, &m.Samples, &m.Rejected} {
		if err := register(reg, c); err != nil {
			return nil, fmt.Errorf("registering ingest metrics: %w", err)
		}
	}
	return m, nil
}

func counter(name, help string, extra ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"format"}, extra...))
}

// register registers *c with reg, or points *c at the equal counter reg has.
func register(reg prometheus.Registerer, c **prometheus.CounterVec) error {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			*c = existing
			return nil
		}
	}
	return err
}

func (m *Metrics) request(format string) {
	if m != nil && m.Requests != nil {
		m.Requests.WithLabelValues(format).Inc()
	}
}

func (m *Metrics) bytes(format string, n int64) {
	if m != nil && m.Bytes != nil {
		m.Bytes.WithLabelValues(format).Add(float64(n))
	}
}

func (m *Metrics) stored(format string, b *model.Batch) {
	if m == nil {
		return
	}
	stacks := 0
	for _, p := range b.Profiles {
		stacks += len(p.Stacks.Stacks)
	}
	if m.Profiles != nil {
		m.Profiles.WithLabelValues(format).Add(float64(len(b.Profiles)))
	}
	if m.Samples != nil {
		m.Samples.WithLabelValues(format).Add(float64(stacks))
	}
}

func (m *Metrics) rejected(format, reason string) {
	if m != nil && m.Rejected != nil {
		m.Rejected.WithLabelValues(format, reason).Inc()
	}
}
