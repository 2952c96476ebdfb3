package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// endpoint is one GET endpoint: its path pattern, the query parameters it
// takes (others are rejected, so typos do not silently fall back to
// defaults) and what it answers.
type endpoint struct {
	name   string // the metric's endpoint label
	path   string
	params []string
	serve  func(ctx context.Context, r *http.Request, v url.Values) (any, error)
}

// rawReply is a non-JSON answer.
type rawReply struct {
	body   []byte
	header http.Header
}

// httpError is an error with its status; other errors are 500s.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

func (a *API) handler(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() { a.duration.WithLabelValues(e.name).Observe(time.Since(start).Seconds()) }()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, &httpError{http.StatusMethodNotAllowed, fmt.Errorf("%s takes GET, not %s", r.URL.Path, r.Method)})
			return
		}
		v, err := checkParams(r.URL.RawQuery, e.params)
		if err != nil {
			writeError(w, r, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.Timeout)
		defer cancel()
		reply, err := e.serve(ctx, r, v)
		if err != nil {
			a.fail(ctx, w, r, err)
			return
		}
		if raw, ok := reply.(*rawReply); ok {
			for k, vs := range raw.header {
				w.Header()[k] = vs
			}
			w.Write(raw.body)
			return
		}
		writeJSON(w, r, http.StatusOK, reply)
	})
}

// fail answers err: client errors as they are, timeouts as 503, store
// failures as 500, logged since they are the server's problem.
func (a *API) fail(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case r.Context().Err() != nil:
		a.opts.Logger.Debug("query API: client went away", "path", r.URL.Path, "err", err)
		return
	case ctx.Err() != nil: // the store may not say it was the deadline
		err = &httpError{http.StatusServiceUnavailable, fmt.Errorf("query timed out after %v: narrow the selector or the time range", a.opts.Timeout)}
	default:
		a.opts.Logger.Error("query API: store failed", "path", r.URL.Path, "query", r.URL.RawQuery, "err", err)
		err = &httpError{http.StatusInternalServerError, err}
	}
	writeError(w, r, err)
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	writeJSON(w, r, status, ErrorResponse{err.Error()})
}

// writeJSON gzips bodies worth it for clients that accept it: flamegraphs
// of tens of thousands of nodes shrink several times.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Add("Vary", "Accept-Encoding")
	if len(body) >= 1024 && acceptsGzip(r) {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(body)
		zw.Close()
		body = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	w.WriteHeader(status)
	w.Write(body) // the client went away; nothing to do
}

func acceptsGzip(r *http.Request) bool {
	for _, enc := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if name, q, _ := strings.Cut(strings.TrimSpace(enc), ";"); name == "gzip" && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// checkParams parses the query string, rejecting parameters the endpoint
// does not take and parameters given twice.
func checkParams(raw string, allowed []string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest("bad query string: %v", err)
	}
	var unknown []string
	for k, vs := range v {
		switch {
		case !slices.Contains(allowed, k):
			unknown = append(unknown, fmt.Sprintf("%q", k))
		case len(vs) > 1:
			return nil, badRequest("parameter %q given %d times", k, len(vs))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		word := "parameter"
		if len(unknown) > 1 {
			word = "parameters"
		}
		takes := "no parameters"
		if len(allowed) > 0 {
			takes = strings.Join(allowed, ", ")
		}
		return nil, badRequest("unknown %s %s (this endpoint takes %s)", word, strings.Join(unknown, ", "), takes)
	}
	return v, nil
}

// symbolz speaks pprof's symbolz protocol: GET asks how many symbols the
// server has, POST asks for the names of addresses. The server keeps no
// binaries, so it has none; pprof then keeps the addresses.
func symbolz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		io.WriteString(w, "num_symbols: 0\n")
	}
}
