package pyroscope

import (
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
)

// FuzzPyroscopeName: ParseName never panics, and what it accepts makes
// valid series labels with the app as service and service_name.
func FuzzPyroscopeName(f *testing.F) {
	for _, s := range []string{"myapp", "myapp.cpu{env=prod,region=eu-1}", "a{otel.scope.name=x/y,__session_id__=1}", "a{b=c=d{,}", "{}", "a{", "a{b}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		if n.App == "" || strings.TrimSpace(n.App) != n.App {
			t.Fatalf("ParseName(%q): app %q", s, n.App)
		}
		checkLabels(t, n.Labels())
		if n.Labels().Get(ServiceNameLabel) != n.App || n.Labels().Get(ServiceLabel) != n.App {
			t.Fatalf("ParseName(%q): labels %s lack the app", s, n.Labels())
		}
	})
}

func checkLabels(t *testing.T, ls labels.Labels) {
	t.Helper()
	if _, dup := ls.HasDuplicateLabelNames(); dup {
		t.Fatalf("duplicate names in %s", ls)
	}
	ls.Range(func(l labels.Label) {
		if !pprofconv.ValidLabelName(l.Name) || pprofconv.ReservedLabelName(l.Name) || l.Value == "" {
			t.Fatalf("bad label %q=%q", l.Name, l.Value)
		}
	})
}

// FuzzPyroscopeRequest: ParseRequest never panics on any query,
// Content-Type and body; an accepted request has a profile and labels.
func FuzzPyroscopeRequest(f *testing.F) {
	ct, body := seedForm()
	f.Add("name=myapp%7Benv%3Dprod%7D&from=1772600767&until=1772600777", ct, body)
	f.Add("name=a&format=pprof", "text/plain", []byte("raw"))
	f.Add("name=a", "binary/octet-stream+trie", []byte{})
	f.Fuzz(func(t *testing.T, query, contentType string, body []byte) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		r, err := ParseRequest(q, contentType, body)
		if err != nil {
			return
		}
		if r.Profile == nil {
			t.Fatalf("accepted without a profile")
		}
		if !r.From.IsZero() && !r.Until.IsZero() && r.Until.Before(r.From) {
			t.Fatalf("until %v before from %v", r.Until, r.From)
		}
		checkLabels(t, r.Labels)
	})
}

// seedForm is a pyroscope-go-shaped multipart body.
func seedForm() (string, []byte) {
	const boundary = "b0undary"
	body := "--" + boundary + "\r\n" +
		"Content-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\n" +
		"Content-Type: application/octet-stream\r\n\r\n" +
		"PPROF\r\n" +
		"--" + boundary + "\r\n" +
		"Content-Disposition: form-data; name=\"sample_type_config\"; filename=\"sample_type_config.json\"\r\n" +
		"Content-Type: application/octet-stream\r\n\r\n" +
		`{"contentions":{"display-name":"block_count"}}` + "\r\n" +
		"--" + boundary + "--\r\n"
	return "multipart/form-data; boundary=" + boundary, []byte(body)
}
