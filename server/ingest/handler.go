package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
	"github.com/flightrec/flightrec/server/model"
)

// Paths the handler serves, all POST.
const (
	AgentPath     = "/api/v1/ingest/agent" // flightrec-agent, docs/wire.md
	PprofPath     = "/api/v1/ingest"       // any pprof, ?labels={service="api"}
	PyroscopePath = "/ingest"              // Pyroscope SDKs
)

// Handler serves the ingest endpoints. Set its fields, then call Register
// once; the fields must not change afterwards.
type Handler struct {
	Sink   Sink // required
	Limits Limits
	// MaxDecoding bounds the requests read and decoded at once, and so
	// ingest memory (each may inflate to Limits.MaxDecompressedBytes);
	// decoding is CPU-bound, so a few per core is enough. Requests waiting
	// for their turn, or for the Sink to commit them, hold no body.
	// Default 8.
	MaxDecoding int
	Limiter     *Limiter              // for sample labels of pprof and Pyroscope uploads; nil: a default one
	Logger      *slog.Logger          // nil: discard
	Metrics     prometheus.Registerer // nil: metrics are not exported
	Now         func() time.Time      // time of profiles that carry none; nil: time.Now

	m        metrics
	decoding chan struct{} // MaxDecoding slots
}

// Register sets the handler up and adds its endpoints to mux. Requests
// other than POST get 405 from mux.
func (h *Handler) Register(mux *http.ServeMux) {
	h.Limits = h.Limits.withDefaults()
	if h.Logger == nil {
		h.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.Limiter == nil {
		h.Limiter = NewLimiter(LimiterConfig{Logger: h.Logger, Registerer: h.Metrics})
	}
	h.m = newMetrics(h.Metrics)
	if h.MaxDecoding <= 0 {
		h.MaxDecoding = 8
	}
	h.decoding = make(chan struct{}, h.MaxDecoding)
	mux.Handle("POST "+AgentPath, h.endpoint("agent", h.decodeAgent))
	mux.Handle("POST "+PprofPath, h.endpoint("pprof", h.decodePprof))
	mux.Handle("POST "+PyroscopePath, h.endpoint("pyroscope", h.decodePyroscope))
}

// decoder turns a request and its body (read within limits) into a batch,
// whose memory may be sc's.
type decoder func(r *http.Request, body []byte, sc *pprofconv.Scratch) (*model.Batch, error)

// endpoint reads, decodes and stores a request: the whole batch is built
// before the one Sink.Append (or Stage), so a request is stored whole or
// not at all. The body and the batch live in pooled memory, reused once
// the Sink has taken the batch: the Sink must copy what it keeps
// (model.Batch says so).
func (h *Handler) endpoint(format string, decode decoder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.m.requests.WithLabelValues(format).Inc()
		select {
		case h.decoding <- struct{}{}:
		case <-r.Context().Done():
			h.m.rejected.WithLabelValues(format, reasonBusy).Inc()
			writeJSON(w, http.StatusServiceUnavailable, errorResponse{"server busy"})
			return
		}
		res, wait, err := h.decodeAndStage(w, r, format, decode)
		if err == nil && wait != nil {
			err = wait()
		}
		switch {
		case errors.Is(err, errStore):
			h.storeFailed(w, r, format, err)
		case err != nil:
			h.reject(w, r, format, err)
		default:
			h.accept(w, format, res)
		}
	})
}

// errStore marks an error of the Sink: the request was fine.
var errStore = errors.New("store")

// decodeAndStage decodes a request and hands its batch to the Sink in the
// decoding slot the caller took, which it gives back on return with the
// request's memory. If the Sink stages batches, the wait it returns is
// the commit still to wait for.
func (h *Handler) decodeAndStage(w http.ResponseWriter, r *http.Request, format string, decode decoder) (response, func() error, error) {
	buf, sc := bodies.Get().(*bytes.Buffer), pprofconv.NewScratch()
	defer func() {
		sc.Release()
		releaseBody(buf)
		<-h.decoding
	}()
	b, err := h.receive(w, r, format, decode, buf, sc)
	if err != nil {
		return response{}, nil, err
	}
	res := summarize(b)
	if len(b.Profiles) == 0 {
		return res, nil, nil
	}
	storeErr := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("%w: %w", errStore, err)
	}
	if st, ok := h.Sink.(Stager); ok {
		wait, err := st.Stage(r.Context(), b)
		if err != nil {
			return res, nil, storeErr(err)
		}
		return res, func() error { return storeErr(wait()) }, nil
	}
	return res, nil, storeErr(h.Sink.Append(r.Context(), b))
}

// receive reads and decodes a request's batch while the request is
// announced to a Sink that groups Appends (Expecter): from when it has a
// decoding slot until its Append or Stage, which follows at once.
func (h *Handler) receive(w http.ResponseWriter, r *http.Request, format string, decode decoder, buf *bytes.Buffer, sc *pprofconv.Scratch) (*model.Batch, error) {
	if e, ok := h.Sink.(Expecter); ok {
		defer e.Expect()()
	}
	body, err := readBody(w, r, h.Limits.MaxBodyBytes, buf)
	h.m.bytes.WithLabelValues(format).Add(float64(len(body)))
	if err != nil {
		return nil, err
	}
	return decode(r, body, sc)
}

type response struct {
	Profiles int `json:"profiles"`
	Samples  int `json:"samples"` // stacks stored, over all profiles
}

// summarize counts what a batch holds, for the response.
func summarize(b *model.Batch) response {
	res := response{Profiles: len(b.Profiles)}
	for _, p := range b.Profiles {
		res.Samples += len(p.Stacks.Stacks)
	}
	return res
}

func (h *Handler) accept(w http.ResponseWriter, format string, res response) {
	h.m.profiles.WithLabelValues(format).Add(float64(res.Profiles))
	h.m.samples.WithLabelValues(format).Add(float64(res.Samples))
	writeJSON(w, http.StatusOK, res)
}

func (h *Handler) reject(w http.ResponseWriter, r *http.Request, format string, err error) {
	status, reason := classify(err)
	h.m.rejected.WithLabelValues(format, reason).Inc()
	h.Logger.Debug("ingest: request rejected", "format", format, "reason", reason, "remote", r.RemoteAddr, "err", err)
	writeJSON(w, status, errorResponse{err.Error()})
}

// storeFailed answers 503: the request was fine, so the sender should retry.
func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, format string, err error) {
	h.m.rejected.WithLabelValues(format, reasonStoreError).Inc()
	h.Logger.Error("ingest: store failed", "format", format, "remote", r.RemoteAddr, "err", err)
	writeJSON(w, http.StatusServiceUnavailable, errorResponse{err.Error()})
}

type errorResponse struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// classify maps an error to its status and rejection reason.
func classify(err error) (int, string) {
	switch {
	case errors.Is(err, pprofconv.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, reasonTooLarge
	case errors.Is(err, pprofconv.ErrUnsupported):
		return http.StatusUnsupportedMediaType, reasonUnsupported
	case errors.Is(err, pprofconv.ErrGzip):
		return http.StatusBadRequest, reasonBadGzip
	case errors.Is(err, pprofconv.ErrZstd):
		return http.StatusBadRequest, reasonBadZstd
	case errors.Is(err, pprofconv.ErrBadLabels):
		return http.StatusBadRequest, reasonBadLabels
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest, reasonBadRequest
	case errors.Is(err, errRead):
		return http.StatusBadRequest, reasonReadError
	}
	return http.StatusBadRequest, reasonMalformed
}
