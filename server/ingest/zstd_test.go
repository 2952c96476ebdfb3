package ingest_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/flightrec/flightrec/server/ingest"
	"github.com/flightrec/flightrec/server/model"
)

// zs compresses data as the agent does (docs/wire.md): one zstd frame at
// the fastest level.
func zs(t *testing.T, data []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(data, nil)
}

// zstdFrames compresses data as two concatenated frames, split at half,
// as bench/server builds its bodies.
func zstdFrames(t *testing.T, data []byte) []byte {
	t.Helper()
	half := len(data) / 2
	return append(zs(t, data[:half]), zs(t, data[half:])...)
}

// zstdBomb is frames zstd frames of mib MiB of zeros each, in 4-byte RLE
// blocks of 128 KiB: a few KB that claim (frames × mib) MiB.
func zstdBomb(frames, mib int) []byte {
	var b []byte
	for range frames {
		b = append(b, 0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38) // magic, no size nor checksum, 128 KiB window
		blocks := mib * 8
		for i := range blocks {
			h := uint32(1)<<1 | 128<<10<<3 // RLE, 128 KiB
			if i == blocks-1 {
				h |= 1 // last
			}
			b = binary.LittleEndian.AppendUint32(b, h)[:len(b)+3]
			b = append(b, 0)
		}
	}
	return b
}

// dumpProfiles renders what a sink received, to compare encodings.
func dumpProfiles(ps []*model.Profile) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s%s scale %d\n", p.Type.Name, p.Labels, p.Scale)
		for i, st := range p.Stacks.Stacks {
			for _, f := range st {
				fmt.Fprintf(&b, "%s;", p.Stacks.Frames[f].Function)
			}
			fmt.Fprintf(&b, " %d\n", p.Stacks.Values[i])
		}
	}
	return b.String()
}

// TestZstdBodies: every endpoint takes zstd as it takes gzip, announced
// or sniffed, in one frame or several, and stores the same profiles.
func TestZstdBodies(t *testing.T) {
	s := newServer(t, nil)
	raw := encode(t, agentPprof(52631578, "42", "43"), false)
	pprofPath := ingest.PprofPath + "?" + url.Values{"labels": {`{service="api"}`}}.Encode()
	pyroPath := ingest.PyroscopePath + "?name=app&format=pprof"
	gzipped := gz(t, raw)
	for _, path := range []string{ingest.AgentPath, pprofPath, pyroPath} {
		r := s.post(t, path, bytes.NewReader(gzipped), "Content-Encoding", "gzip")
		if r.status != http.StatusOK {
			t.Fatalf("%s, gzip: reply %+v", path, r)
		}
		want := dumpProfiles(s.sink.profiles())
		tests := []struct {
			name    string
			body    []byte
			headers []string
		}{
			{"zstd", zs(t, raw), []string{"Content-Encoding", "zstd"}},
			{"zstd sniffed", zs(t, raw), nil},
			{"zstd, upper-case header", zs(t, raw), []string{"Content-Encoding", "ZSTD"}},
			{"two zstd frames", zstdFrames(t, raw), []string{"Content-Encoding", "zstd"}},
			{"gzipped pprof file in zstd", zs(t, gzipped), []string{"Content-Encoding", "zstd"}},
		}
		for _, tt := range tests {
			r := s.post(t, path, bytes.NewReader(tt.body), tt.headers...)
			if r.status != http.StatusOK {
				t.Errorf("%s, %s: reply %+v", path, tt.name, r)
				continue
			}
			if got := dumpProfiles(s.sink.profiles()); got != want {
				t.Errorf("%s, %s: stored\n%s\nwant (as from gzip)\n%s", path, tt.name, got, want)
			}
		}
	}
}

// TestZstdRejects: zstd fails as gzip does, with its own reason.
func TestZstdRejects(t *testing.T) {
	s := newServer(t, nil)
	raw := encode(t, agentPprof(100, "1"), false)
	good := zs(t, raw)
	tests := []struct {
		name    string
		body    []byte
		headers []string
		status  int
		reason  string
		msg     string
	}{
		{"zstd bomb", zstdBomb(1, 300), []string{"Content-Encoding", "zstd"}, 413, "too_large", "decompressed body exceeds 256 MiB"},
		{"zstd bomb of frames", zstdBomb(3, 100), nil, 413, "too_large", "decompressed body exceeds 256 MiB"},
		{"truncated zstd", good[:len(good)/2], []string{"Content-Encoding", "zstd"}, 400, "bad_zstd", "truncated zstd"},
		{"truncated second frame", zstdFrames(t, raw)[:len(good)+8], nil, 400, "bad_zstd", "truncated zstd"},
		{"corrupt zstd", append(good[:8:8], bytes.Repeat([]byte{0xff}, 64)...), nil, 400, "bad_zstd", "bad zstd: "},
		{"zstd header, plain body", raw, []string{"Content-Encoding", "zstd"}, 400, "bad_zstd", "Content-Encoding is zstd but the body is not"},
		{"zstd header, gzip body", gz(t, raw), []string{"Content-Encoding", "zstd"}, 400, "bad_zstd", "Content-Encoding is zstd but the body is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.counter(t, "flightrec_ingest_rejected_total", "agent", tt.reason)
			r := s.post(t, ingest.AgentPath, bytes.NewReader(tt.body), tt.headers...)
			if r.status != tt.status || !strings.Contains(r.Error, tt.msg) {
				t.Errorf("reply = %d %q, want %d containing %q", r.status, r.Error, tt.status, tt.msg)
			}
			if b := s.sink.take(); len(b) != 0 {
				t.Errorf("%d batches reached the sink", len(b))
			}
			if got := s.counter(t, "flightrec_ingest_rejected_total", "agent", tt.reason); got != before+1 {
				t.Errorf("rejected_total{agent,%s} = %v, want %v", tt.reason, got, before+1)
			}
			// The pooled decoder that failed decodes the next request.
			if r := s.post(t, ingest.AgentPath, bytes.NewReader(good), "Content-Encoding", "zstd"); r.status != http.StatusOK || len(s.sink.take()) != 1 {
				t.Errorf("good request after: %+v", r)
			}
		})
	}
}
