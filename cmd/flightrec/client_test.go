package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/api/apitest"
)

// runCLI runs flightrec with args and returns exit code, stdout, stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &env{stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

func TestQuery(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	file := filepath.Join(t.TempDir(), "p.pb.gz")
	code, _, stderr := runCLI(t, "query", `cpu{service="api"}`, "--server", s.URL, "--from", "-1h", "-o", file)
	if code != 0 || !strings.HasPrefix(stderr, "wrote "+file+": 4 samples, 280ms cpu from ") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if total := profileTotal(t, data); total != 280_000_000 {
		t.Errorf("profile total %d, want 280ms", total)
	}

	code, stdout, stderr := runCLI(t, "query", `{service="db"}`, "--server", s.URL, "-o", "-")
	if code != 0 || profileTotal(t, []byte(stdout)) != 100_000_000 || !strings.HasPrefix(stderr, "wrote stdout: 1 samples, 100ms cpu") {
		t.Errorf("-o -: exit %d, stderr %q", code, stderr)
	}

	code, _, stderr = runCLI(t, "query", `{service="nope"}`, "--server", s.URL, "-o", file)
	if code != 0 || !strings.Contains(stderr, `empty profile: no profiles match cpu{service="nope"}`) {
		t.Errorf("empty: exit %d, stderr %q", code, stderr)
	}
}

func profileTotal(t *testing.T, data []byte) int64 {
	t.Helper()
	p, err := profile.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range p.Sample {
		total += s.Value[0]
	}
	return total
}

func TestTop(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{`cpu{service="api"}`}, `Showing top 5 of 5 functions by flat, of 280ms total (cpu)
      flat  flat%   sum%        cum   cum%
     150ms 53.57% 53.57%      150ms 53.57%  main.parse
      60ms 21.43% 75.00%       60ms 21.43%  runtime.mallocgc
      40ms 14.29% 89.29%      280ms   100%  main.handle
      30ms 10.71%   100%       30ms 10.71%  libc.so.6+0x9a3f0
         0     0%   100%      280ms   100%  main.main
`},
		{[]string{"--order", "total", "--limit", "2", "{}"}, `Showing top 2 of 6 functions by cum, of 380ms total (cpu)
      flat  flat%   sum%        cum   cum%
         0     0%     0%      380ms   100%  main.main
      40ms 10.53% 10.53%      280ms 73.68%  main.handle
`},
		{[]string{"alloc_space", "--limit", "1"}, `Showing top 1 of 3 functions by flat, of 1kB total (alloc_space)
      flat  flat%   sum%        cum   cum%
       1kB   100%   100%        1kB   100%  runtime.mallocgc
`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"top", "--server", s.URL}, tt.args...)...)
			if code != 0 || stdout != tt.want {
				t.Errorf("exit %d, stderr %q, stdout\n%s\nwant\n%s", code, stderr, stdout, tt.want)
			}
		})
	}
	code, stdout, stderr := runCLI(t, "top", "--server", s.URL, "off_cpu")
	if code != 0 || stdout != "" || !strings.Contains(stderr, "there are no off_cpu profiles in the range, types with data: alloc_space, cpu") {
		t.Errorf("empty top: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestLabels(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	t.Setenv("FLIGHTREC_SERVER", s.URL) // the default --server
	tests := []struct {
		args []string
		want string
	}{
		{nil, "node\nservice\nversion\n"},
		{[]string{"service"}, "api\ndb\n"},
		{[]string{"node", "--query", `{service="api"}`}, "n1\nn3\n"},
		{[]string{"--query", `{service="db"}`}, "node\nservice\n"},
		{[]string{"__name__"}, "alloc_space\ncpu\n"},
		{[]string{"version", "--type", "alloc_space"}, "1.8.2\n"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(t, append([]string{"labels"}, tt.args...)...)
		if code != 0 || stdout != tt.want {
			t.Errorf("labels %v: exit %d, stdout %q, stderr %q; want %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

func TestUpload(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		Sample:     []*profile.Sample{{Value: []int64{10}}, {Value: []int64{20}}},
	}
	file := filepath.Join(t.TempDir(), "cpu.pb.gz")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, stdout, stderr := runCLI(t, "upload", "--server", s.URL, "--labels", `{service="api",version="1.2"}`, file)
	if code != 0 || stdout != "uploaded "+file+": 1 profiles, 2 samples\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	up := s.Uploads()
	if len(up) != 1 || up[0].Labels.String() != `{service="api", version="1.2"}` || len(up[0].Profile.Sample) != 2 {
		t.Errorf("server received %+v", up)
	}
}

// TestExitCodes checks that invocation mistakes exit 2 and server or
// network failures 1, each with a message naming the problem.
func TestExitCodes(t *testing.T) {
	s := apitest.Start(t, api.Options{})
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pb.gz")
	if err := os.WriteFile(garbage, []byte("not a profile"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	srv := "--server=" + s.URL
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"top", srv}, 2, "flightrec top: missing SELECTOR"},
		{[]string{"top", srv, "cpu{"}, 2, `flightrec top: invalid selector "cpu{"`},
		{[]string{"top", srv, "cpu", "service=api"}, 2, "want one SELECTOR, got 2 arguments"},
		{[]string{"top", srv, "cpu", "--order", "cum"}, 2, `--order: bad order "cum": want self or total`},
		{[]string{"top", srv, "cpu", "--limit", "-1"}, 2, "--limit -1"},
		{[]string{"top", srv, "cpu", "--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"query", srv, "cpu", "--from", "yesterday"}, 2, `--from: bad time "yesterday"`},
		{[]string{"query", srv, "cpu", "--to", "1999-01-01"}, 2, "--to: time \"1999-01-01\" (1999-01-01T00:00:00Z) is out of range"},
		{[]string{"query", "--server", "localhost:7070", "cpu"}, 2, `--server: bad server URL "localhost:7070"`},
		{[]string{"query", srv, "--token-file", filepath.Join(dir, "none"), "cpu"}, 2, "--token-file: open"},
		{[]string{"labels", srv, "a", "b"}, 2, "want at most one label NAME"},
		{[]string{"labels", srv, "--query", "{a=}"}, 2, "--query: invalid selector"},
		{[]string{"upload", srv}, 2, "missing FILE"},
		{[]string{"upload", srv, "--labels", `{service=~"a"}`, garbage}, 2, `--labels {service=~"a"}: 1:9: parse error`},
		{[]string{"upload", srv, "--labels", `cpu{service="a"}`, garbage}, 2, `names profile type "cpu"`},
		{[]string{"upload", srv, "--labels", `{a="1",a="2"}`, garbage}, 2, "label a given twice"},
		{[]string{"top", srv, "cpu", "--type", "a-b"}, 0, ""}, // the selector names the type: --type unused
		{[]string{"top", srv, "{}", "--type", "a-b"}, 1, `400 Bad Request: bad type "a-b"`},
		{[]string{"top", "--server", closed, "cpu"}, 1, "GET " + closed + "/api/v1/top: dial tcp"},
		{[]string{"upload", srv, garbage}, 1, "upload " + garbage + ": POST /api/v1/ingest: 400 Bad Request: malformed pprof"},
		{[]string{"upload", srv, filepath.Join(dir, "missing.pb.gz")}, 1, "no such file"},
		{[]string{"query", srv, "cpu", "-o", filepath.Join(dir, "no", "dir.pb.gz")}, 1, "write profile: open"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.msg)
			}
		})
	}
}

func TestTokenFile(t *testing.T) {
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
	dir := t.TempDir()
	token, empty := filepath.Join(dir, "token"), filepath.Join(dir, "empty")
	os.WriteFile(token, []byte("s3cret\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--token-file", token}, 0, ""},
		{nil, 1, "401 Unauthorized: missing or bad token"},
		{[]string{"--token-file", empty}, 2, "is empty"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(t, append([]string{"labels", "--server", hs.URL}, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) || (code == 0 && stdout != "node\nservice\nversion\n") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, %q", tt.args, code, stdout, stderr, tt.code, tt.msg)
		}
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    int64
		unit string
		want string
	}{
		{0, "nanoseconds", "0"},
		{999, "nanoseconds", "999ns"},
		{1500, "nanoseconds", "1.5us"},
		{280_000_000, "nanoseconds", "280ms"},
		{1_234_000_000, "nanoseconds", "1.23s"},
		{90e9, "nanoseconds", "1.5min"},
		{7200e9, "nanoseconds", "2h"},
		{1024, "bytes", "1kB"},
		{5 << 20, "bytes", "5MB"},
		{12345, "count", "12345"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatValue(%d, %s) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}
