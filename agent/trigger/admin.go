package trigger

import (
	"encoding/json"
	"net/http"
	"time"
)

// AdminHandler serves POST /trigger?reason=...&before=60s&after=10s on the
// agent's admin endpoint: an engineer on the node freezes the last minute.
func (m *Manager) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
			return
		}
		q := r.URL.Query()
		req := Request{Kind: "manual", Reason: q.Get("reason"), Key: "manual"}
		if req.Reason == "" {
			req.Reason = "manual trigger on the agent"
		}
		for name, dst := range map[string]*time.Duration{"before": &req.Before, "after": &req.After} {
			if v := q.Get(name); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 || d > 10*time.Minute {
					writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad " + name + " " + v + ": want a duration up to 10m"})
					return
				}
				*dst = d
			}
		}
		outcome, id := m.Fire(req)
		code := http.StatusAccepted
		if outcome != Fired {
			code = http.StatusTooManyRequests
		}
		writeJSON(w, code, map[string]string{"outcome": outcome, "id": id})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
