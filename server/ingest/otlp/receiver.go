package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/grpc/codes"

	"github.com/flightrec/flightrec/server/model"
)

// Sink stores a batch whole and durably, or returns an error and stores
// nothing. It is ingest.Sink, declared here so that package ingest may
// import this one; any ingest.Sink is a Sink.
type Sink interface {
	Append(ctx context.Context, b *model.Batch) error
}

// Default body limits of the HTTP endpoint. DefaultMaxDecodedBytes is also
// the recommended gRPC receive limit (GRPCServerOptions).
const (
	DefaultMaxBodyBytes    = 32 << 20
	DefaultMaxDecodedBytes = 256 << 20
	maxIdempotencyKey      = 256 // as package ingest
)

// Option configures NewHTTPHandler and RegisterGRPC.
type Option func(*config)

type config struct {
	limits     Limits
	metrics    *Metrics
	maxBody    int64
	maxDecoded int64
	now        func() time.Time
	log        *slog.Logger
}

// WithLimits sets the conversion limits (default DefaultLimits).
func WithLimits(l Limits) Option { return func(c *config) { c.limits = l } }

// WithMetrics counts requests in m (default: not counted).
func WithMetrics(m *Metrics) Option { return func(c *config) { c.metrics = m } }

// WithBodyLimits bounds an HTTP body as received and after decompression
// (defaults DefaultMaxBodyBytes and DefaultMaxDecodedBytes). gRPC bounds
// messages with the server's grpc.MaxRecvMsgSize instead.
func WithBodyLimits(body, decoded int64) Option {
	return func(c *config) { c.maxBody, c.maxDecoded = body, decoded }
}

// WithClock sets the time of profiles that have none (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLogger logs rejected requests at debug level and storage failures at
// error level to l (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

func newConfig(opts []Option) config {
	c := config{maxBody: DefaultMaxBodyBytes, maxDecoded: DefaultMaxDecodedBytes, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// failure is why a request was not stored. It decides the HTTP status, the
// gRPC code and the rejected_total reason, whose values are package
// ingest's.
type failure int

const (
	failMalformed   failure = iota // not a valid request
	failTooLarge                   // a size or count limit, ErrLimit included
	failBadGzip                    // corrupt or truncated gzip
	failUnsupported                // content type or encoding
	failBadRequest                 // headers
	failMethod                     // not POST
	failRead                       // the body did not arrive whole
	failStore                      // the sink failed: retryable
)

// describe returns the failure's rejected_total reason, HTTP status and
// gRPC code.
func (f failure) describe() (reason string, status int, code codes.Code) {
	switch f {
	case failTooLarge:
		return "too_large", http.StatusRequestEntityTooLarge, codes.ResourceExhausted
	case failBadGzip:
		return "bad_gzip", http.StatusBadRequest, codes.InvalidArgument
	case failUnsupported:
		return "unsupported", http.StatusUnsupportedMediaType, codes.InvalidArgument
	case failBadRequest:
		return "bad_request", http.StatusBadRequest, codes.InvalidArgument
	case failMethod:
		return "bad_request", http.StatusMethodNotAllowed, codes.Unimplemented
	case failRead:
		return "read_error", http.StatusBadRequest, codes.InvalidArgument
	case failStore:
		return "store_error", http.StatusServiceUnavailable, codes.Unavailable
	}
	return "malformed", http.StatusBadRequest, codes.InvalidArgument
}

func (f failure) reason() string   { r, _, _ := f.describe(); return r }
func (f failure) httpStatus() int  { _, s, _ := f.describe(); return s }
func (f failure) code() codes.Code { _, _, c := f.describe(); return c }

// exportError is a rejected request's error and its failure kind.
type exportError struct {
	kind failure
	err  error
}

func (e *exportError) Error() string { return e.err.Error() }
func (e *exportError) Unwrap() error { return e.err }

// kindOf returns err's failure kind; errors not made by reject are the sink's.
func kindOf(err error) failure {
	var e *exportError
	if errors.As(err, &e) {
		return e.kind
	}
	return failStore
}

// receiver is what the HTTP and gRPC endpoints share: conversion, storage,
// counting and logging.
type receiver struct {
	sink   Sink
	format string
	cfg    config
}

func newReceiver(sink Sink, format string, opts []Option) *receiver {
	return &receiver{sink: sink, format: format, cfg: newConfig(opts)}
}

// export converts req and stores it under the idempotency key key.
func (r *receiver) export(ctx context.Context, req *collectorpb.ExportProfilesServiceRequest, key string) error {
	if len(key) > maxIdempotencyKey {
		return r.reject(failBadRequest, fmt.Errorf("idempotency key is longer than %d bytes", maxIdempotencyKey))
	}
	b, err := Convert(req, r.cfg.now(), r.cfg.limits)
	if err != nil {
		kind := failMalformed
		if errors.Is(err, ErrLimit) {
			kind = failTooLarge
		}
		return r.reject(kind, fmt.Errorf("invalid ExportProfilesServiceRequest: %w", err))
	}
	b.Key = key
	if len(b.Profiles) > 0 {
		if err := r.sink.Append(ctx, b); err != nil {
			return r.reject(failStore, fmt.Errorf("storing profiles: %w", err))
		}
	}
	r.cfg.metrics.stored(r.format, b)
	return nil
}

// reject counts and logs a rejected request and returns its error.
func (r *receiver) reject(kind failure, err error) error {
	r.cfg.metrics.rejected(r.format, kind.reason())
	if kind == failStore {
		r.cfg.log.Error("ingest: store failed", "format", r.format, "err", err)
	} else {
		r.cfg.log.Debug("ingest: request rejected", "format", r.format, "reason", kind.reason(), "err", err)
	}
	return &exportError{kind: kind, err: err}
}
