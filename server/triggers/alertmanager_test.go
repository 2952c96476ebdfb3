package triggers_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flightrec/flightrec/server/triggers"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// alert is a firing alert of fingerprint fp that started at start.
func alert(fp string, start time.Time, ls ...string) triggers.Alert {
	a := triggers.Alert{Status: "firing", Labels: map[string]string{}, Annotations: map[string]string{"summary": "burning 14.4x"},
		StartsAt: start, Fingerprint: fp, GeneratorURL: "http://prometheus/graph"}
	for i := 0; i < len(ls); i += 2 {
		a.Labels[ls[i]] = ls[i+1]
	}
	return a
}

func webhook(alerts ...triggers.Alert) triggers.Webhook {
	return triggers.Webhook{Version: "4", Status: "firing", Receiver: "flightrec", GroupKey: `{}:{alertname="X"}`,
		GroupLabels: map[string]string{"alertname": "X"}, ExternalURL: "http://alertmanager", Alerts: alerts}
}

func TestAlertmanagerWebhook(t *testing.T) {
	now := t0
	s := serve(t, stubResolver{
		`{service="api"}`: {"n1", "n2"},
		`{service="db"}`:  {"n3"},
		`{namespace="prod",pod="api-1",service="api"}`: {"n1"},
		`{node="n2",service="api"}`:                    {"n2"},
	}, triggers.Config{RateLimit: 4, Now: func() time.Time { return now }})
	api := func(fp string, start time.Time, extra ...string) triggers.Alert {
		return alert(fp, start, append([]string{"alertname", "ErrorBudgetBurn", "service", "api", "severity", "page", "flightrec", "capture"}, extra...)...)
	}
	resolved := api("a1", t0)
	resolved.Status = "resolved"
	tests := []struct {
		name    string
		advance time.Duration
		alerts  []triggers.Alert
		want    []string // outcome and, when fired, selector → nodes
	}{
		{"fires", 0, []triggers.Alert{api("a1", t0)}, []string{`fired {service="api"} [n1 n2]`}},
		{"resent", time.Minute, []triggers.Alert{api("a1", t0)}, []string{"duplicate"}},
		{"new incident in cooldown", time.Minute, []triggers.Alert{api("a1", t0.Add(2*time.Minute))}, []string{"cooldown"}},
		{"resolved", 0, []triggers.Alert{resolved}, []string{"ignored"}},
		{"no mapped label", 0, []triggers.Alert{alert("b1", t0, "alertname", "Disk", "instance", "x:9100")}, []string{"ignored"}},
		{"mapped labels", 0, []triggers.Alert{
			api("c1", t0, "namespace", "prod", "pod", "api-1", "job", "api"),
			api("c2", t0, "node", "n2", "instance", "x"),
		}, []string{`fired {namespace="prod",pod="api-1",service="api"} [n1]`, `fired {node="n2",service="api"} [n2]`}},
		{"no nodes", 0, []triggers.Alert{api("d1", t0, "service", "web")}, []string{"no_nodes"}},
		{"rate limited", 0, []triggers.Alert{
			alert("e1", t0, "alertname", "DBDown", "service", "db"),
			alert("e2", t0, "alertname", "DBSlow", "service", "db"),
		}, []string{`fired {service="db"} [n3]`, "rate_limited"}},
		{"cooldown over", 10 * time.Minute, []triggers.Alert{api("a1", t0.Add(2*time.Minute))}, []string{`fired {service="api"} [n1 n2]`}},
		{"rate limit not remembered as fired", 0, []triggers.Alert{alert("e2", t0, "alertname", "DBSlow", "service", "db")},
			[]string{`fired {service="db"} [n3]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = now.Add(tt.advance)
			status, body := post(t, s.URL+triggers.AlertmanagerPath, webhook(tt.alerts...))
			var res triggers.WebhookResponse
			if err := json.Unmarshal(body, &res); err != nil || status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			var got []string
			for _, a := range res.Alerts {
				if a.Outcome == triggers.Fired {
					got = append(got, fmt.Sprintf("fired %s %v", a.Selector, a.Nodes))
				} else {
					got = append(got, a.Outcome)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// n1 holds the last firing's trigger, as agents receive it; the
	// earlier ones expired as the clock moved on.
	got := pending(t, s, "n1")
	if len(got) != 1 {
		t.Fatalf("queued for n1: %+v", got)
	}
	first := got[0]
	if first.Kind != "alert" || first.Reason != "ErrorBudgetBurn (burning 14.4x)" || first.Fingerprint != "a1" ||
		first.Selector != `{service="api"}` || first.Labels["severity"] != "page" || first.BeforeS != 60 || first.AfterS != 10 ||
		first.TimeNS != now.UnixNano() {
		t.Errorf("queued %+v", first)
	}
	for outcome, want := range map[string]int{"fired": 6, "duplicate": 1, "cooldown": 1, "ignored": 2, "no_nodes": 1, "rate_limited": 1} {
		if n := count(t, s, "alert", outcome); n != want {
			t.Errorf("flightrec_triggers_total{kind=alert,outcome=%s} = %d, want %d", outcome, n, want)
		}
	}
}

func TestAlertLabelRenames(t *testing.T) {
	mapping, err := triggers.ParseLabelMappings("job=service, kubernetes_namespace=namespace,node")
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, stubResolver{`{namespace="prod",service="api"}`: {"n1"}}, triggers.Config{AlertLabels: mapping})
	_, body := post(t, s.URL+triggers.AlertmanagerPath, webhook(alert("f", t0, "alertname", "X", "job", "api", "kubernetes_namespace", "prod", "service", "ignored")))
	if !strings.Contains(string(body), `"selector":"{namespace=\"prod\",service=\"api\"}"`) || !strings.Contains(string(body), `"outcome":"fired"`) {
		t.Errorf("answer %s", body)
	}
	for _, bad := range []string{"", "a=", "1x", "a=b,c=b", "a=__name__"} {
		if _, err := triggers.ParseLabelMappings(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMalformedWebhooks(t *testing.T) {
	s := serve(t, stubResolver{}, triggers.Config{})
	valid, _ := json.Marshal(webhook(alert("a", t0, "alertname", "X", "service", "api")))
	edit := func(old, new string) []byte { return []byte(strings.Replace(string(valid), old, new, 1)) }
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"empty", nil, "empty body"},
		{"not json", []byte("alertname=X"), "not Alertmanager's webhook JSON"},
		{"version", edit(`"version":"4"`, `"version":"3"`), `webhook version \"3\"`},
		{"no version", edit(`"version":"4",`, ``), `webhook version \"\"`},
		{"status", edit(`"status":"firing","receiver"`, `"status":"pending","receiver"`), `status \"pending\"`},
		{"no alerts", edit(`"alerts":[`, `"alerts":[],"x":[`), "no alerts"},
		{"alert status", edit(`"status":"firing","labels"`, `"status":"maybe","labels"`), `alert 0: status \"maybe\"`},
		{"alert labels", edit(`"labels":{"alertname":"X","service":"api"}`, `"labels":{}`), "alert 0: no labels"},
		{"startsAt", edit(`"startsAt":"2026-11-20T10:00:00Z"`, `"startsAt":"yesterday"`), "cannot parse"},
		{"labels type", edit(`"labels":{"alertname":"X","service":"api"}`, `"labels":["X"]`), "cannot unmarshal array"},
		{"trailing", append(slices.Clone(valid), []byte(`{"version":"4"}`)...), "data after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, s.URL+triggers.AlertmanagerPath, tt.body)
			if status != 400 || !strings.Contains(string(body), tt.want) {
				t.Errorf("%d %s, want 400 with %q", status, body, tt.want)
			}
		})
	}
	if status, _ := post(t, s.URL+triggers.AlertmanagerPath+"?debug=1", valid); status != 400 {
		t.Errorf("unknown parameter: %d", status)
	}
	if status, body := post(t, s.URL+triggers.AlertmanagerPath, valid); status != 200 {
		t.Errorf("the valid one: %d %s", status, body)
	}
}
