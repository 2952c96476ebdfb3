package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandler: the app's routes get index.html, built assets are served
// and cached, and the server's own paths and other methods are not the app.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	assets, err := fs.Glob(dist, "dist/assets/*.js")
	if err != nil || len(assets) == 0 {
		t.Fatalf("no built JS in dist/assets (%v): run make ui", err)
	}
	asset := strings.TrimPrefix(assets[0], "dist")
	cases := []struct {
		method, path string
		status       int
		contentType  string // prefix
		body         string // substring
		cache        string
	}{
		{"GET", "/", 200, "text/html", `<div id="app">`, "no-cache"},
		{"GET", "/explore?query=cpu%7B%7D&zoom=a%3Bb", 200, "text/html", `<div id="app">`, "no-cache"},
		{"GET", "/compare/deeper/route", 200, "text/html", `<div id="app">`, "no-cache"},
		{"HEAD", "/explore", 200, "text/html", "", "no-cache"},
		{"GET", asset, 200, "text/javascript", "", "immutable"},
		{"GET", "/assets/index-stale.js", 404, "text/plain", "", ""},
		{"GET", "/api/v1/nothing", 404, "text/plain", "", ""},
		{"GET", "/debug/nothing", 404, "text/plain", "", ""},
		{"POST", "/explore", 405, "text/plain", "", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ct := resp.Header.Get("Content-Type")
		if resp.StatusCode != c.status || !strings.HasPrefix(ct, c.contentType) || !strings.Contains(string(body), c.body) ||
			!strings.Contains(resp.Header.Get("Cache-Control"), c.cache) {
			t.Errorf("%s %s: %d %q cache %q body %.80q; want %d %q cache %q body with %q",
				c.method, c.path, resp.StatusCode, ct, resp.Header.Get("Cache-Control"), body, c.status, c.contentType, c.cache, c.body)
		}
	}
}
