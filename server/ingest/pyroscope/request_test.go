package pyroscope

import (
	"bytes"
	"errors"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		in     string
		app    string
		suffix string
		hint   pprofconv.Hint
		tags   string
	}{
		{"myapp", "myapp", "", "", "{}"},
		{"  myapp  ", "myapp", "", "", "{}"},
		{"myapp{}", "myapp", "", "", "{}"},
		{"myapp.cpu{env=prod}", "myapp", "cpu", "", `{env="prod"}`},
		{"backend.purchases", "backend.purchases", "", "", "{}"},
		{"myapp.mutex_count{}", "myapp", "mutex_count", pprofconv.HintMutex, "{}"},
		{"myapp.block_duration", "myapp", "block_duration", pprofconv.HintBlock, "{}"},
		{"my app .cpu", "my app", "cpu", "", "{}"},
		{".cpu", ".cpu", "", "", "{}"},
		{"my-app/x{ a = 1 , b=2,}", "my-app/x", "", "", `{a="1", b="2"}`},
		{"app{otel.scope.name=com.grafana.pyroscope/go,__session_id__=abc}", "app", "", "", `{otel_scope_name="com.grafana.pyroscope/go"}`},
		{"app{q=a=b{c,empty=}", "app", "", "", `{q="a=b{c"}`},
		{"app{k=1,k=2}", "app", "", "", `{k="2"}`},
		{"app{9x=1}", "app", "", "", `{_9x="1"}`},
	}
	for _, tt := range tests {
		n, err := ParseName(tt.in)
		if err != nil {
			t.Errorf("ParseName(%q): %v", tt.in, err)
			continue
		}
		if n.App != tt.app || n.Suffix != tt.suffix || n.Hint != tt.hint || n.Tags.String() != tt.tags {
			t.Errorf("ParseName(%q) = %q %q %q %s; want %q %q %q %s", tt.in, n.App, n.Suffix, n.Hint, n.Tags, tt.app, tt.suffix, tt.hint, tt.tags)
		}
	}
	bad := map[string]string{
		"":                    "application name is empty",
		"{a=b}":               "application name is empty",
		"app{a=b":             "lack the closing '}'",
		"app{a=b}x":           "text after",
		"app{novalue}":        `tag "novalue" has no '='`,
		"app{=v}":             "empty name",
		"app{a=" + long + "}": "longer than 1024 bytes",
	}
	for in, msg := range bad {
		_, err := ParseName(in)
		if !errors.Is(err, pprofconv.ErrBadLabels) || !strings.Contains(errString(err), msg) {
			t.Errorf("ParseName(%.40q) = %v, want ErrBadLabels containing %q", in, err, msg)
		}
	}
}

var long = strings.Repeat("v", 1025)

func TestNameLabels(t *testing.T) {
	n, err := ParseName("myapp{env=prod,service=other,service_name=other}")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n.Labels().String(), `{env="prod", service="myapp", service_name="myapp"}`; got != want {
		t.Errorf("labels = %s, want %s", got, want)
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	good := map[string]time.Time{
		"1772600767":          want,
		"1772600767000":       want,
		"1772600767000000":    want,
		"1772600767000000000": want,
		"1772600767123":       want.Add(123 * time.Millisecond),
	}
	for in, w := range good {
		if got, err := ParseTime(in); err != nil || !got.Equal(w) {
			t.Errorf("ParseTime(%s) = %v, %v; want %v", in, got, err, w)
		}
	}
	for _, in := range []string{"", "now", "now-1h", "-5", "+5", "1.5", "12345", "20260304", "99999999999999999999"} {
		if got, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
		}
	}
}

// form builds a multipart body as pyroscope-go does.
func form(t *testing.T, parts ...string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(parts); i += 2 {
		fw, err := w.CreateFormFile(parts[i], parts[i]+".bin")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte(parts[i+1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), buf.Bytes()
}

func TestParseRequest(t *testing.T) {
	mutexCfg := `{"contentions":{"display-name":"mutex_count","units":"lock_samples"},"delay":{"display-name":"mutex_duration"}}`
	ct, body := form(t, "profile", "PPROF", "sample_type_config", mutexCfg, "other", "ignored")
	q := url.Values{"name": {"myapp{env=prod}"}, "from": {"1772600767"}, "until": {"1772600777000000000"}, "spyName": {"gospy"}, "sampleRate": {"100"}, "units": {"samples"}, "aggregationType": {"sum"}, "unknown": {"x"}}
	r, err := ParseRequest(q, ct, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Profile) != "PPROF" || r.PrevProfile != nil || r.Hint != pprofconv.HintMutex {
		t.Errorf("profile %q, prev %q, hint %q", r.Profile, r.PrevProfile, r.Hint)
	}
	if got := r.Labels.String(); got != `{env="prod", service="myapp", service_name="myapp"}` {
		t.Errorf("labels = %s", got)
	}
	if r.Until.Sub(r.From) != 10*time.Second {
		t.Errorf("from %v until %v", r.From, r.Until)
	}
	if r.SampleTypes["contentions"].Units != "lock_samples" {
		t.Errorf("sample types = %+v", r.SampleTypes)
	}

	q.Set("until", "1772600766") // before from, as pyroscope-go's Flush sends
	if r, err := ParseRequest(q, ct, body); err != nil || !r.Until.IsZero() || r.From.IsZero() {
		t.Errorf("until before from: %+v, %v; want until ignored", r, err)
	}

	ct, body = form(t, "profile", "NEW", "prev_profile", "OLD")
	if r, err := ParseRequest(url.Values{"name": {"a.block_count"}}, ct, body); err != nil || string(r.PrevProfile) != "OLD" || r.Hint != pprofconv.HintBlock {
		t.Errorf("prev_profile: %+v, %v", r, err)
	}
	for _, ct := range []string{"binary/octet-stream", "application/octet-stream", "text/plain"} {
		q := url.Values{"name": {"a"}}
		if ct == "text/plain" {
			q.Set("format", "pprof")
		}
		if r, err := ParseRequest(q, ct, []byte("RAW")); err != nil || string(r.Profile) != "RAW" {
			t.Errorf("raw body as %s: %+v, %v", ct, r, err)
		}
	}
}

func TestParseRequestRejects(t *testing.T) {
	okCT, okBody := form(t, "profile", "P")
	noProfileCT, noProfileBody := form(t, "prev_profile", "P")
	twiceCT, twiceBody := form(t, "profile", "P", "profile", "Q")
	badJSONCT, badJSONBody := form(t, "profile", "P", "sample_type_config", "{")
	bigCT, bigBody := form(t, "profile", "P", "sample_type_config", strings.Repeat(" ", 65<<10))
	tests := []struct {
		name  string
		query string
		ct    string
		body  []byte
		kind  error
		msg   string
	}{
		{"no name", "", okCT, okBody, pprofconv.ErrBadLabels, "missing parameter name"},
		{"bad name", "name=app{x", okCT, okBody, pprofconv.ErrBadLabels, "closing '}'"},
		{"bad from", "name=a&from=yesterday", okCT, okBody, pprofconv.ErrMalformed, `parameter from: "yesterday" is not a Unix time`},
		{"bad until", "name=a&until=1.5", okCT, okBody, pprofconv.ErrMalformed, "parameter until"},
		{"jfr", "name=a&format=jfr", okCT, okBody, pprofconv.ErrUnsupported, `format "jfr" is not supported`},
		{"trie", "name=a", "binary/octet-stream+trie", []byte("x"), pprofconv.ErrUnsupported, `format "trie"`},
		{"groups", "name=a", "text/plain", []byte("foo;bar 1"), pprofconv.ErrUnsupported, `format "groups"`},
		{"no boundary", "name=a", "multipart/form-data", okBody, pprofconv.ErrMalformed, "no boundary"},
		{"wrong boundary", "name=a", "multipart/form-data; boundary=nope", okBody, pprofconv.ErrMalformed, "multipart body"},
		{"no profile", "name=a", noProfileCT, noProfileBody, pprofconv.ErrMalformed, `no "profile" part`},
		{"two profiles", "name=a", twiceCT, twiceBody, pprofconv.ErrMalformed, `two "profile" parts`},
		{"bad config", "name=a", badJSONCT, badJSONBody, pprofconv.ErrMalformed, "sample_type_config"},
		{"big config", "name=a", bigCT, bigBody, pprofconv.ErrTooLarge, "exceeds 64 KiB"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		_, err := ParseRequest(q, tt.ct, tt.body)
		if !errors.Is(err, tt.kind) || !strings.Contains(errString(err), tt.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", tt.name, err, tt.kind, tt.msg)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
