package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	tests := map[string]string{
		"empty":         "# nothing\n",
		"bad scope":     "write abcdefghijklmnopqrst\n",
		"short token":   "read short\n",
		"missing token": "read\n",
		"extra field":   "read abcdefghijklmnopqrst extra\n",
	}
	for name, content := range tests {
		if _, err := Load(writeFile(t, content)); err == nil {
			t.Errorf("%s: Load accepted %q", name, content)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Load accepted a missing file")
	}
}

func TestRequire(t *testing.T) {
	tokens, err := Load(writeFile(t, "# tokens\ningest ingest-token-0123456789\nread read-token-0123456789\nall all-token-0123456789\n"))
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	ingest := tokens.Require(Ingest, ok)
	read := tokens.Require(Read, ok)
	tests := []struct {
		name    string
		h       http.Handler
		setAuth func(*http.Request)
		want    int
	}{
		{"no token", ingest, func(r *http.Request) {}, 401},
		{"unknown token", ingest, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope-nope-nope-nope") }, 401},
		{"ingest token ingests", ingest, func(r *http.Request) { r.Header.Set("Authorization", "Bearer ingest-token-0123456789") }, 204},
		{"ingest token cannot read", read, func(r *http.Request) { r.Header.Set("Authorization", "Bearer ingest-token-0123456789") }, 403},
		{"read token reads", read, func(r *http.Request) { r.Header.Set("Authorization", "Bearer read-token-0123456789") }, 204},
		{"read token cannot ingest", ingest, func(r *http.Request) { r.Header.Set("Authorization", "Bearer read-token-0123456789") }, 403},
		{"all token does both", read, func(r *http.Request) { r.Header.Set("Authorization", "Bearer all-token-0123456789") }, 204},
		{"basic auth password", ingest, func(r *http.Request) { r.SetBasicAuth("pyroscope", "ingest-token-0123456789") }, 204},
		{"prefix of a token", read, func(r *http.Request) { r.Header.Set("Authorization", "Bearer read-token") }, 401},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", "/x", nil)
		tt.setAuth(req)
		rec := httptest.NewRecorder()
		tt.h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.want)
		}
		if tt.want >= 400 && !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("%s: body %q has no error message", tt.name, rec.Body.String())
		}
	}
}

func TestNilTokensAllowAll(t *testing.T) {
	var tokens *Tokens
	rec := httptest.NewRecorder()
	tokens.Require(Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 204 || tokens.Enabled() {
		t.Errorf("nil tokens: status %d enabled %v", rec.Code, tokens.Enabled())
	}
}
