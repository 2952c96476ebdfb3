package snapshots

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The conventions of the query API (server/api): JSON errors
// {"error": "..."}, unknown parameters rejected, large JSON gzipped.

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

// rawReply is a non-JSON answer.
type rawReply struct {
	body   []byte
	header http.Header
}

// get serves a GET endpoint taking params: JSON or raw answers, errors as
// JSON with their status.
func (a *API) get(params []string, serve func(*http.Request, url.Values) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := checkParams(r.URL.RawQuery, params)
		if err == nil {
			var reply any
			if reply, err = serve(r, v); err == nil {
				writeReply(w, r, reply)
				return
			}
		}
		var he *httpError
		if !errors.As(err, &he) {
			a.log.Error("snapshot API failed", "path", r.URL.Path, "query", r.URL.RawQuery, "err", err)
		}
		writeError(w, err)
	})
}

func writeReply(w http.ResponseWriter, r *http.Request, reply any) {
	raw, ok := reply.(*rawReply)
	if !ok {
		writeJSON(w, r, http.StatusOK, reply)
		return
	}
	for k, vs := range raw.header {
		w.Header()[k] = vs
	}
	w.Write(raw.body) // the client went away; nothing to do
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	writeJSON(w, nil, status, ErrorResponse{err.Error()})
}

// writeJSON gzips large bodies for clients that accept it (r may be nil):
// timelines are arrays of mostly zeros.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if r != nil && len(body) >= 1024 && acceptsGzip(r) {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(body)
		zw.Close()
		body = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	}
	w.WriteHeader(status)
	w.Write(body)
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
// does not take (typos would silently fall back to defaults) and
// parameters given twice.
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
	if len(unknown) == 0 {
		return v, nil
	}
	slices.Sort(unknown)
	takes := "no parameters"
	if len(allowed) > 0 {
		takes = strings.Join(allowed, ", ")
	}
	return nil, badRequest("unknown parameters %s (this endpoint takes %s)", strings.Join(unknown, ", "), takes)
}
