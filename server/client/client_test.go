package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/api/apitest"
	"github.com/flightrec/flightrec/server/client"
)

const ms = int64(time.Millisecond)

func newClient(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQueries(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	c := newClient(t, s.URL+"/") // a trailing slash must not double
	ctx := context.Background()

	data, err := c.Pprof(ctx, `{service="api"}`, "-1h", "now", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, smp := range p.Sample {
		total += smp.Value[0]
	}
	if total != 280*ms {
		t.Errorf("pprof total %d, want 280ms", total)
	}

	top, err := c.Top(ctx, `cpu{service="api"}`, "", "", "", "total", 1)
	if err != nil {
		t.Fatal(err)
	}
	if top.Total != 280*ms || top.Count != 5 || len(top.Functions) != 1 || top.Functions[0].Name != "main.handle" {
		t.Errorf("top %+v", top)
	}

	fg, err := c.Flamegraph(ctx, `cpu{service="db"}`, "", "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if fg.Total != 100*ms || len(fg.Nodes.Name) != 3 || fg.Names[fg.Nodes.Name[2]] != "db.query" {
		t.Errorf("flamegraph %+v", fg)
	}

	series, err := c.Series(ctx, "cpu", s.Base.Format(time.RFC3339), "", "", time.Minute, []string{})
	if err != nil {
		t.Fatal(err)
	}
	if len(series.Series) != 1 || len(series.Series[0].Labels) != 0 || series.Series[0].Points[0][1] != 380*ms {
		t.Errorf("series summed into one: %+v", series)
	}

	names, err := c.Labels(ctx, "", "", "", "alloc_space")
	if err != nil || !slices.Equal(names, []string{"node", "service", "version"}) {
		t.Errorf("labels of alloc_space %v, %v", names, err)
	}
	values, err := c.LabelValues(ctx, "node", `{service="api"}`, "", "", "")
	if err != nil || !slices.Equal(values, []string{"n1", "n3"}) {
		t.Errorf("node values %v, %v", values, err)
	}
	types, err := c.Types(ctx, "-1h", "")
	if err != nil || len(types) != 2 || types[1].Name != "cpu" || types[1].SampleUnit != "nanoseconds" {
		t.Errorf("types %+v, %v", types, err)
	}

	_, msg, err := c.FetchPprof(ctx, `{service="nope"}`, "", "", "")
	if err != nil || !strings.Contains(msg, `no profiles match cpu{service="nope"}`) {
		t.Errorf("empty pprof message %q, %v", msg, err)
	}
}

func TestErrors(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	c := newClient(t, s.URL)
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		status int
		msg    string
	}{
		{"bad selector", func() error { _, err := c.Top(ctx, "cpu{", "", "", "", "", 0); return err }, 400, `bad query: invalid selector "cpu{"`},
		{"bad time", func() error { _, err := c.Pprof(ctx, "cpu", "yesterday", "", ""); return err }, 400, `bad from: bad time "yesterday"`},
		{"bad order", func() error { _, err := c.Top(ctx, "cpu", "", "", "", "cum", 0); return err }, 400, `bad order "cum"`},
		{"bad label", func() error { _, err := c.LabelValues(ctx, "a b", "", "", "", ""); return err }, 400, `bad label name "a b"`},
		{"bad upload", func() error { return c.Upload(ctx, `{service="api"}`, []byte("not a profile")) }, 400, "malformed pprof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *client.Error
			if !errors.As(err, &e) || e.Status != tt.status || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("error %v, want status %d with message containing %q", err, tt.status, tt.msg)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "400 Bad Request") {
				t.Errorf("error text %q lacks status or message", err)
			}
		})
	}
}

// TestNonJSONError expects a proxy's plain answer quoted, bounded.
func TestNonJSONError(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down "+strings.Repeat("x", 2000), http.StatusBadGateway)
	}))
	defer hs.Close()
	_, err := newClient(t, hs.URL).Types(context.Background(), "", "")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 502 || !strings.HasPrefix(e.Message, "upstream down") || len(e.Message) > 600 {
		t.Errorf("error %v", err)
	}
}

func TestNetworkError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = newClient(t, "http://"+addr).Types(context.Background(), "", "")
	if err == nil || !strings.Contains(err.Error(), "GET http://"+addr+"/api/v1/types") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %v, want the URL and the cause", err)
	}
}

func TestToken(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"missing or bad token"}`))
			return
		}
		s.Mux.ServeHTTP(w, r)
	}))
	defer hs.Close()
	c := newClient(t, hs.URL)
	_, err := c.Types(context.Background(), "", "")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Message != "missing or bad token" {
		t.Errorf("without token: %v", err)
	}
	c.Token = "s3cret"
	if _, err := c.Types(context.Background(), "", ""); err != nil {
		t.Errorf("with token: %v", err)
	}
}

func TestUpload(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	c := newClient(t, s.URL)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample:     []*profile.Sample{{Value: []int64{1, 10_000_000}}},
	}
	var gz bytes.Buffer
	if err := p.Write(&gz); err != nil {
		t.Fatal(err)
	}
	res, err := c.Ingest(context.Background(), `{service="api",version="1.2"}`, gz.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if res.Profiles != 2 || res.Samples != 1 {
		t.Errorf("result %+v, want 2 profiles (sample types), 1 sample", res)
	}
	up := s.Uploads()
	if len(up) != 1 || up[0].Labels.Get("service") != "api" || up[0].Labels.Get("version") != "1.2" {
		t.Errorf("server received %+v", up)
	}
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:7070", "ftp://host", "http://", "http://a b"} {
		if _, err := client.New(u); err == nil || !strings.Contains(err.Error(), "bad server URL") {
			t.Errorf("New(%q) error %v", u, err)
		}
	}
}
