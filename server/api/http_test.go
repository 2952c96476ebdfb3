package api

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteJSONGzip(t *testing.T) {
	big := map[string]string{"names": strings.Repeat("main.work;", 500)}
	tests := []struct {
		accept string
		body   any
		gzip   bool
	}{
		{"gzip", big, true},
		{"deflate, gzip;q=0.5", big, true},
		{"gzip;q=0", big, false},
		{"", big, false},
		{"gzip", map[string]string{"small": "x"}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Encoding", tt.accept)
		w := httptest.NewRecorder()
		writeJSON(w, r, http.StatusOK, tt.body)
		var body io.Reader = w.Body
		if got := w.Header().Get("Content-Encoding") == "gzip"; got != tt.gzip {
			t.Errorf("Accept-Encoding %q: gzipped %v, want %v", tt.accept, got, tt.gzip)
			continue
		}
		if tt.gzip {
			zr, err := gzip.NewReader(w.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		var got map[string]string
		if err := json.NewDecoder(body).Decode(&got); err != nil || len(got) != 1 {
			t.Errorf("Accept-Encoding %q: body %v, %v", tt.accept, got, err)
		}
	}
}
