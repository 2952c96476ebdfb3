package triggers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/auth"
	"github.com/flightrec/flightrec/server/query"
)

// Paths of the endpoints.
const (
	PollPath         = "/api/v1/agent/triggers" // GET: agents' long poll
	ManualPath       = "/api/v1/triggers"       // POST: a manual trigger
	AlertmanagerPath = "/api/v1/alertmanager"   // POST: Alertmanager's webhook
)

// maxBody bounds request bodies: an Alertmanager group of many alerts.
const maxBody = 4 << 20

// Register adds the endpoints to mux. All need the ingest scope: polling
// is the agents' side of the channel, and a trigger makes agents work and
// ship data, which a read token must not be able to cause.
func (s *Service) Register(mux *http.ServeMux, tokens *auth.Tokens) {
	mux.Handle("GET "+PollPath, tokens.Require(auth.Ingest, http.HandlerFunc(s.poll)))
	mux.Handle("POST "+ManualPath, tokens.Require(auth.Ingest, http.HandlerFunc(s.manual)))
	mux.Handle("POST "+AlertmanagerPath, tokens.Require(auth.Ingest, http.HandlerFunc(s.alertmanager)))
}

// PollResponse is a poll's 200 body.
type PollResponse struct {
	Triggers []Trigger `json:"triggers"`
}

// poll answers 200 with the node's triggers after "after" as soon as there
// are any, or 204 after "wait".
func (s *Service) poll(w http.ResponseWriter, r *http.Request) {
	v, err := checkParams(r.URL.RawQuery, []string{"node", "agent", "after", "wait"})
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	node, wait := v.Get("node"), 30*time.Second
	if node == "" {
		writeError(w, http.StatusBadRequest, errors.New("missing node"))
		return
	}
	if ws := v.Get("wait"); ws != "" {
		if wait, err = query.ParseDuration(ws); err != nil || wait > s.cfg.MaxWait {
			writeError(w, http.StatusBadRequest, fmt.Errorf("bad wait %q: want a duration up to %s", ws, formatDuration(s.cfg.MaxWait)))
			return
		}
	}
	s.endOnShutdown(r)
	got, err := s.queue.Wait(r.Context(), node, v.Get("after"), wait)
	switch {
	case r.Context().Err() != nil: // the agent went away
	case err != nil:
		writeError(w, http.StatusBadRequest, err)
	case len(got) == 0:
		w.WriteHeader(http.StatusNoContent)
	default:
		s.cfg.Logger.Info("triggers delivered", "node", node, "agent", v.Get("agent"), "count", len(got), "last", got[len(got)-1].ID)
		writeJSON(w, http.StatusOK, PollResponse{Triggers: got})
	}
}

// endOnShutdown has the server that runs r end the polls when it shuts
// down: http.Server.Shutdown waits for requests to finish, and agents
// always have a poll open, so it would otherwise wait out its timeout.
func (s *Service) endOnShutdown(r *http.Request) {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.servers[srv] {
		s.servers[srv] = true
		srv.RegisterOnShutdown(s.queue.Close)
	}
}

func (s *Service) manual(w http.ResponseWriter, r *http.Request) {
	var req ManualRequest
	body, err := readBody(w, r)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&req); err != nil {
			err = fmt.Errorf("%w: body: %v (want {\"selector\": ..., \"reason\": ..., \"before_s\": 60, \"after_s\": 10})", ErrInvalid, err)
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	res, err := s.Manual(r.Context(), req)
	switch {
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		s.cfg.Logger.Error("manual trigger failed", "err", err)
		writeError(w, http.StatusInternalServerError, err)
	case res.Outcome == RateLimited:
		w.Header().Set("Retry-After", fmt.Sprint(int(s.cfg.RateWindow.Seconds())))
		writeError(w, http.StatusTooManyRequests, fmt.Errorf("rate limited: more than %d triggers in %s", s.cfg.RateLimit, formatDuration(s.cfg.RateWindow)))
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// alertmanager takes the webhook: 200 once handled (Alertmanager retries
// other answers), 400 for a payload it should not resend.
func (s *Service) alertmanager(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	var hook *Webhook
	if err == nil {
		hook, err = ParseWebhook(body)
	}
	if err != nil {
		s.cfg.Logger.Warn("alertmanager webhook rejected", "err", err)
		writeError(w, http.StatusBadRequest, err)
		return
	}
	res, err := s.Alertmanager(r.Context(), hook)
	if err != nil {
		s.cfg.Logger.Error("alertmanager webhook failed", "err", err)
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if _, err := checkParams(r.URL.RawQuery, nil); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody)); err != nil {
		return nil, fmt.Errorf("%w: read body: %v", ErrInvalid, err)
	}
	return buf.Bytes(), nil
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, ErrorResponse{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// checkParams rejects parameters the endpoint does not take, so that
// typos do not fall back to defaults, and parameters given twice.
func checkParams(raw string, allowed []string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("bad query string: %w", err)
	}
	for k, vs := range v {
		switch {
		case !slices.Contains(allowed, k):
			takes := "no parameters"
			if len(allowed) > 0 {
				takes = strings.Join(allowed, ", ")
			}
			return nil, fmt.Errorf("unknown parameter %q (this endpoint takes %s)", k, takes)
		case len(vs) > 1:
			return nil, fmt.Errorf("parameter %q given %d times", k, len(vs))
		}
	}
	return v, nil
}
