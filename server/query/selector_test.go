package query

import (
	"strings"
	"testing"
	"time"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in       string
		typ      string
		matchers string // Selector.String() minus the type
		err      string
	}{
		{in: `cpu{service="api",version=~"1\\.8.*",node!="n3"}`, typ: "cpu", matchers: `{service="api",version=~"1\\.8.*",node!="n3"}`},
		{in: `{service="api"}`, typ: "", matchers: `{service="api"}`},
		{in: `alloc_space`, typ: "alloc_space", matchers: `{}`},
		{in: `{}`, typ: "", matchers: `{}`},
		{in: `{__name__="off_cpu", node="n1"}`, typ: "off_cpu", matchers: `{node="n1"}`},
		{in: ``, err: "invalid selector: empty"},
		{in: `cpu{`, err: `invalid selector "cpu{"`},
		{in: `sum(cpu)`, err: "invalid selector"},
		{in: `cpu[5m]`, err: "invalid selector"},
		{in: `{__name__=~"cpu.*"}`, err: "profile type must be a plain name, got a regex"},
		{in: `{__name__!="cpu"}`, err: "profile type must be a plain name, got !="},
		{in: `cpu{__name__="off_cpu"}`, err: "profile type is given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sel, err := ParseSelector(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseSelector(%q) error %v, want one containing %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sel.Type != tt.typ {
				t.Errorf("type %q, want %q", sel.Type, tt.typ)
			}
			if got := strings.TrimPrefix(sel.String(), sel.Type); got != tt.matchers {
				t.Errorf("matchers %s, want %s", got, tt.matchers)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: "now", want: now},
		{in: " now ", want: now},
		{in: "-1h", want: now.Add(-time.Hour)},
		{in: "-30m", want: now.Add(-30 * time.Minute)},
		{in: "-90s", want: now.Add(-90 * time.Second)},
		{in: "-2d", want: now.Add(-48 * time.Hour)},
		{in: "-1w", want: now.Add(-7 * 24 * time.Hour)},
		{in: "-1h30m", want: now.Add(-90 * time.Minute)},
		{in: "-1.5h", want: now.Add(-90 * time.Minute)},
		{in: "now-1h", want: now.Add(-time.Hour)},
		{in: "now+5m", want: now.Add(5 * time.Minute)},
		{in: "2026-11-20T10:00:00Z", want: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)},
		{in: "2026-11-20T11:00:00.25+01:00", want: time.Date(2026, 11, 20, 10, 0, 0, 250e6, time.UTC)},
		{in: "2026-11-20", want: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)},
		{in: "1795168800", want: time.Unix(1795168800, 0)},
		{in: "1795168800.123", want: time.Unix(1795168800, 123e6)},
		{in: "1795168800123", want: time.UnixMilli(1795168800123)},
		{in: "1795168800123.5", want: time.UnixMilli(1795168800123).Add(500 * time.Microsecond)},
		{in: "", err: "empty time"},
		{in: "yesterday", err: `bad time "yesterday": want RFC 3339`},
		{in: "-1", err: `bad time "-1": bad duration "1"`},
		{in: "-1y", err: `bad duration "1y"`},
		{in: "1e9", err: `bad time "1e9"`},
		{in: "now-", err: "empty duration"},
		{in: "2026-13-01", err: "bad time"},
		{in: "100", err: "out of range: must be between 2000-01-01 and a day from now"},
		{in: "1999-12-31T23:59:59Z", err: "out of range"},
		{in: "now+25h", err: "out of range"},
		{in: "99999999999999999", err: "out of range"},
		{in: "99999999999999999999", err: "bad time"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in, now)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseTime(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10s", 10 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"2d", 48 * time.Hour, true},
		{"1w2d", 9 * 24 * time.Hour, true},
		{"500ms", 500 * time.Millisecond, true},
		{"", 0, false},
		{"10", 0, false},
		{"-10s", 0, false},
		{"10x", 0, false},
		{"1h 30m", 0, false},
		{"999999999999h", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
