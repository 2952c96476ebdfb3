// Package ui serves the web UI (Explore, Compare, ...): the assets Vite
// builds from ui/src into ui/dist, committed and embedded so go build needs no Node.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed all:dist
var dist embed.FS

// apiPrefixes are the server's own paths: an unknown path under them is a
// missing endpoint, answered 404, not the app's index.html.
var apiPrefixes = []string{"/api/", "/debug/", "/metrics", "/healthz", "/v1", "/ingest", "/pyroscope"}

// Handler serves the built app: files as they are, hashed assets cached for
// good, and index.html for every other GET so that the app's own routes
// (/explore, /compare?...) load on reload and from links.
func Handler() http.Handler {
	root, err := fs.Sub(dist, "dist")
	if err != nil {
		// The embed directive guarantees dist exists; this is unreachable.
		return http.NotFoundHandler()
	}
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := path.Clean(r.URL.Path)
		for _, pre := range apiPrefixes {
			if strings.HasPrefix(p, pre) {
				http.NotFound(w, r)
				return
			}
		}
		name := strings.TrimPrefix(p, "/")
		if st, err := fs.Stat(root, name); name != "" && err == nil && !st.IsDir() {
			if strings.HasPrefix(name, "assets/") {
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			}
			files.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(name, "assets/") {
			http.NotFound(w, r) // a stale hashed asset: index.html would be parsed as JS
			return
		}
		serveIndex(w, r, root)
	})
}

func serveIndex(w http.ResponseWriter, r *http.Request, root fs.FS) {
	b, err := fs.ReadFile(root, "index.html")
	if err != nil {
		http.Error(w, "the UI is not built: run make ui", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b)
}
