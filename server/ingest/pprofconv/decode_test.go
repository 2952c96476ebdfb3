package pprofconv

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
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

// zs compresses data as one zstd frame, with the encoder's options.
func zs(t *testing.T, data []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zstdBomb is n MiB of zeros as one zstd frame of unknown size (a stream),
// built without holding n MiB.
func zstdBomb(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range n {
		if _, err := w.Write(zeros); err != nil {
			t.Fatal(err)
		}
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
	zcorrupt := zs(t, raw)
	zcorrupt[len(zcorrupt)-2] ^= 0xff // inside the xxhash checksum
	half := len(raw) / 2
	twoFrames := append(zs(t, raw[:half]), zs(t, raw[half:])...)
	// Hand-made frames of one raw block ("x"): one asking for a 16 MiB
	// window (descriptor 0x70: 2^(10+14)), one declaring 1 GiB of content
	// in a single segment (so a 1 GiB window).
	block := []byte{0x09, 0, 0, 'x'} // last, raw, 1 byte
	wide := append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x70}, block...)
	huge := append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 0x40}, block...)
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
		{"zstd", zs(t, raw), 5000, raw, nil, ""},
		{"zstd fastest", zs(t, raw, zstd.WithEncoderLevel(zstd.SpeedFastest)), 5000, raw, nil, ""},
		{"zstd two frames", twoFrames, 5000, raw, nil, ""},
		{"gzip in zstd", zs(t, gz(t, raw)), 5000, raw, nil, ""},
		{"zstd in gzip", gz(t, zs(t, raw)), 5000, raw, nil, ""},
		{"zstd exactly the limit", zs(t, raw), 5000, raw, nil, ""},
		{"zstd one byte over", zs(t, raw), 4999, nil, ErrTooLarge, "decompressed body exceeds 4999 bytes"},
		{"zstd second frame over", twoFrames, 4999, nil, ErrTooLarge, "decompressed body exceeds 4999 bytes"},
		{"zstd bomb", zstdBomb(t, 10), 1 << 20, nil, ErrTooLarge, "decompressed body exceeds 1 MiB"},
		{"zstd window", wide, 1 << 30, nil, ErrTooLarge, "zstd frame needs a window of 16 MiB, over 8 MiB"},
		{"zstd declared size", huge, 2 << 30, nil, ErrTooLarge, "zstd frame needs a window of 1 GiB, over 8 MiB"},
		{"zstd window, second frame", append(zs(t, raw), wide...), 1 << 30, nil, ErrZstd, "bad zstd: window size exceeded"},
		{"zstd declared size, second frame", append(zs(t, raw), huge...), 2 << 30, nil, ErrTooLarge, "zstd frame needs a window over 8 MiB"},
		{"zstd truncated", zs(t, raw)[:20], 1 << 20, nil, ErrZstd, "truncated zstd"},
		{"zstd truncated header", zs(t, raw)[:5], 1 << 20, nil, ErrZstd, "truncated zstd"},
		{"zstd magic only", zs(t, raw)[:4], 1 << 20, nil, ErrZstd, "truncated zstd"},
		{"zstd corrupt", zcorrupt, 1 << 20, nil, ErrZstd, "bad zstd: "},
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
		{"three gzip layers", gz(t, gz(t, gz(t, []byte("x")))), "still compressed after 2 layers"},
		{"three zstd layers", zs(t, zs(t, zs(t, []byte("x")))), "still compressed after 2 layers"},
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
