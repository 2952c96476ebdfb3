package triggers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/query"
)

// Webhook is Alertmanager's webhook payload, version 4. Fields added by
// later Alertmanagers are accepted and ignored.
type Webhook struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a webhook.
type Alert struct {
	Status       string            `json:"status"` // firing or resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// ParseWebhook decodes and checks a webhook body; its errors say what is
// wrong, for the 400 answer.
func ParseWebhook(body []byte) (*Webhook, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: empty body: want Alertmanager's webhook JSON", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var w Webhook
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: not Alertmanager's webhook JSON: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	if err := w.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &w, nil
}

func (w *Webhook) check() error {
	switch {
	case w.Version != "4":
		return fmt.Errorf("webhook version %q: this server reads version \"4\"", w.Version)
	case w.Status != "firing" && w.Status != "resolved":
		return fmt.Errorf("status %q: want firing or resolved", w.Status)
	case len(w.Alerts) == 0:
		return errors.New("no alerts")
	}
	for i, a := range w.Alerts {
		switch {
		case a.Status != "firing" && a.Status != "resolved":
			return fmt.Errorf("alert %d: status %q: want firing or resolved", i, a.Status)
		case len(a.Labels) == 0:
			return fmt.Errorf("alert %d: no labels", i)
		}
	}
	return nil
}

// AlertResult is what became of one alert of a webhook.
type AlertResult struct {
	Fingerprint string `json:"fingerprint"`
	Alertname   string `json:"alertname"`
	Selector    string `json:"selector,omitempty"`
	Result
}

// WebhookResponse answers a webhook.
type WebhookResponse struct {
	Alerts []AlertResult `json:"alerts"`
}

// Alertmanager fires a trigger for each firing alert of w that maps to a
// selector, once per fingerprint within the cooldown.
func (s *Service) Alertmanager(ctx context.Context, w *Webhook) (WebhookResponse, error) {
	s.forgetAlerts(s.cfg.Now())
	out := WebhookResponse{Alerts: []AlertResult{}}
	for _, a := range w.Alerts {
		r, err := s.alert(ctx, a)
		if err != nil {
			return out, err
		}
		out.Alerts = append(out.Alerts, r)
	}
	return out, nil
}

func (s *Service) alert(ctx context.Context, a Alert) (AlertResult, error) {
	fp := a.Fingerprint
	if fp == "" { // Alertmanager always sends one; other senders may not
		fp = strconv.FormatUint(labels.FromMap(a.Labels).Hash(), 16)
	}
	t := Trigger{Kind: KindAlert, Reason: reason(a), Labels: a.Labels, Fingerprint: fp,
		BeforeS: seconds(s.cfg.Before), AfterS: seconds(s.cfg.After)}
	res := AlertResult{Fingerprint: fp, Alertname: a.Labels["alertname"]}
	sel, ok := s.selector(a.Labels)
	switch {
	case a.Status == "resolved":
		res.Result = Result{Outcome: Ignored, Nodes: []string{}, Message: "resolved alerts take no snapshot"}
	case !ok:
		res.Result = Result{Outcome: Ignored, Nodes: []string{}, Message: "the alert has none of the labels " + s.mappedNames()}
	default:
		t.Selector, res.Selector = sel.String(), sel.String()
		if o := s.recentAlert(fp, a.StartsAt, s.cfg.Now()); o != "" { // spare the store a lookup
			res.Result = Result{Outcome: o, Nodes: []string{}}
			break
		}
		r, err := s.fire(ctx, t, sel, s.admitAlert(fp, a.StartsAt))
		res.Result = r
		return res, err
	}
	s.record(t, res.Result)
	return res, nil
}

// selector maps alert labels to a selector; false if none maps.
func (s *Service) selector(alert map[string]string) (query.Selector, bool) {
	var sel query.Selector
	for _, m := range s.cfg.AlertLabels {
		if v := alert[m.From]; v != "" {
			sel.Matchers = append(sel.Matchers, labels.MustNewMatcher(labels.MatchEqual, m.To, v))
		}
	}
	slices.SortFunc(sel.Matchers, func(a, b *labels.Matcher) int { return strings.Compare(a.Name, b.Name) })
	return sel, len(sel.Matchers) > 0
}

func (s *Service) mappedNames() string {
	names := make([]string, len(s.cfg.AlertLabels))
	for i, m := range s.cfg.AlertLabels {
		names[i] = m.From
	}
	return strings.Join(names, ", ")
}

// reason is the alert's name and, if it has one, its summary.
func reason(a Alert) string {
	r := a.Labels["alertname"]
	if r == "" {
		r = "alert"
	}
	if sum := strings.TrimSpace(a.Annotations["summary"]); sum != "" {
		r += " (" + sum + ")"
	}
	if len(r) > maxReason {
		r = r[:maxReason]
	}
	return r
}

// admitAlert admits an alert not fired within the cooldown, within the
// rate limit, and remembers its fingerprint.
func (s *Service) admitAlert(fp string, startsAt time.Time) admitFunc {
	return func(now time.Time) string {
		if o := s.cooldown(fp, startsAt, now); o != "" {
			return o
		}
		if o := s.admitRate(now); o != Fired {
			return o
		}
		s.alerts[fp] = alertFiring{firedAt: now, startsAt: startsAt}
		return Fired
	}
}

func (s *Service) recentAlert(fp string, startsAt, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cooldown(fp, startsAt, now)
}

// cooldown says whether fp fired within the cooldown: Duplicate for the
// same alert resent (same start), Cooldown for a new one; "" if not.
func (s *Service) cooldown(fp string, startsAt, now time.Time) string {
	f, ok := s.alerts[fp]
	switch {
	case !ok || now.Sub(f.firedAt) >= s.cfg.AlertCooldown:
		return ""
	case f.startsAt.Equal(startsAt):
		return Duplicate
	}
	return Cooldown
}

// forgetAlerts drops fingerprints whose cooldown is over.
func (s *Service) forgetAlerts(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.DeleteFunc(s.alerts, func(_ string, f alertFiring) bool { return now.Sub(f.firedAt) >= s.cfg.AlertCooldown })
}
