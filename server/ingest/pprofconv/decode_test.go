package pprofconv

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
)

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInflate(t *testing.T) {
	raw := bytes.Repeat([]byte("pprof"), 1000) // 5000 bytes
	corrupt := gz(t, raw)
	corrupt[len(corrupt)-6] ^= 0xff // inside the CRC-32 trailer
	tests := []struct {
		name string
		in   []byte
		max  int64
		want []byte
		kind error
		msg  string
	}{
		{"plain", raw, 5000, raw, nil, ""},
		{"gzip", gz(t, raw), 5000, raw, nil, ""},
		{"gzip in gzip", gz(t, gz(t, raw)), 5000, raw, nil, ""},
		{"plain too large", raw, 4999, nil, ErrTooLarge, "decompressed body exceeds 4999 bytes"},
		{"bomb", gz(t, make([]byte, 10<<20)), 1 << 20, nil, ErrTooLarge, "decompressed body exceeds 1 MiB"},
		{"truncated", gz(t, raw)[:30], 1 << 20, nil, ErrGzip, "truncated gzip"},
		{"truncated header", gz(t, raw)[:5], 1 << 20, nil, ErrGzip, "truncated gzip"},
		{"corrupt", corrupt, 1 << 20, nil, ErrGzip, "bad gzip: gzip: invalid checksum"},
	}
	for _, tt := range tests {
		got, err := Inflate(tt.in, tt.max)
		if tt.kind == nil {
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("%s: got %d bytes, %v; want %d bytes", tt.name, len(got), err, len(tt.want))
			}
			continue
		}
		if !errors.Is(err, tt.kind) || !strings.Contains(fmtErr(err), tt.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", tt.name, err, tt.kind, tt.msg)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "parse pprof: empty profile"},
		{"not protobuf", []byte("this is not a profile"), "parse pprof: "},
		{"three gzip layers", gz(t, gz(t, gz(t, []byte("x")))), "still gzip-compressed"},
	}
	for _, tt := range tests {
		_, err := Decode(tt.in, 1<<20)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(fmtErr(err), tt.msg) {
			t.Errorf("%s: err = %v, want ErrMalformed containing %q", tt.name, err, tt.msg)
		}
	}
}

func TestSanitizeLabelName(t *testing.T) {
	tests := map[string]string{
		"tenant":          "tenant",
		"http.method":     "http_method",
		"otel.scope.name": "otel_scope_name",
		"9lives":          "_9lives",
		"ünïcode":         "_n_code",
		"a-b c":           "a_b_c",
		"":                "",
		"__name__":        "__name__",
	}
	for in, want := range tests {
		got := SanitizeLabelName(in)
		if got != want {
			t.Errorf("SanitizeLabelName(%q) = %q, want %q", in, got, want)
		}
		if got != "" && !ValidLabelName(got) {
			t.Errorf("SanitizeLabelName(%q) = %q is not valid", in, got)
		}
	}
}
