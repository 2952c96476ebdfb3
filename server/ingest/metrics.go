package ingest

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Rejection reasons, the values of flightrec_ingest_rejected_total's reason.
const (
	reasonTooLarge    = "too_large"   // 413: a size or count limit
	reasonBadGzip     = "bad_gzip"    // corrupt or truncated gzip
	reasonBadZstd     = "bad_zstd"    // corrupt or truncated zstd
	reasonMalformed   = "malformed"   // not a valid profile or form
	reasonBadLabels   = "bad_labels"  // labels selector, app name or sample labels
	reasonUnsupported = "unsupported" // 415: format or encoding
	reasonBadRequest  = "bad_request" // query parameters or headers
	reasonReadError   = "read_error"  // the body did not arrive whole
	reasonStoreError  = "store_error" // 503: the sink failed
	reasonBusy        = "busy"        // 503: the client gave up waiting to be decoded
)

// Reasons of flightrec_ingest_labels_dropped_total.
const (
	dropLimit    = "limit"    // over the limiter's values (or names) per base series
	dropConflict = "conflict" // same name as a sender label (or another sample label)
	dropReserved = "reserved" // empty or reserved (__…) name
)

type metrics struct {
	requests, bytes, profiles, samples *prometheus.CounterVec // by format
	rejected                           *prometheus.CounterVec // by format, reason
	dropped                            *prometheus.CounterVec // by reason
}

func newMetrics(reg prometheus.Registerer) metrics {
	byFormat := func(name, help string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"format"}))
	}
	return metrics{
		requests: byFormat("flightrec_ingest_requests_total", "Ingest requests received."),
		bytes:    byFormat("flightrec_ingest_bytes_total", "Request body bytes received, as sent (compressed)."),
		profiles: byFormat("flightrec_ingest_profiles_total", "Profiles (one type and series each) stored."),
		samples:  byFormat("flightrec_ingest_samples_total", "Stacks with their values stored."),
		rejected: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flightrec_ingest_rejected_total", Help: "Ingest requests refused, nothing of them stored.",
		}, []string{"format", "reason"})),
		dropped: droppedLabels(reg),
	}
}

// droppedLabels is shared by the handler and the limiter, which may be
// created apart on one registry.
func droppedLabels(reg prometheus.Registerer) *prometheus.CounterVec {
	return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flightrec_ingest_labels_dropped_total",
		Help: "Sample labels dropped, once per pprof sample (conflict, reserved) or per type and label set of a request (limit).",
	}, []string{"reason"}))
}

// register registers c, or returns the identical collector already there.
// Any other failure is a programming error, reported at startup as
// MustRegister does.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("ingest: register metrics: %v", err))
}
