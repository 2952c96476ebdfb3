package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ChannelConfig says where the agent long-polls for triggers.
type ChannelConfig struct {
	Server  string // base URL
	Token   string
	Node    string
	AgentID string
	Wait    time.Duration // how long the server may hold a poll; default 30 s
}

// serverTrigger is a trigger as the server delivers it (docs/triggers.md).
type serverTrigger struct {
	ID          string            `json:"id"`
	Kind        string            `json:"kind"`
	Reason      string            `json:"reason"`
	TimeNS      int64             `json:"time_ns"`
	Selector    string            `json:"selector"`
	Labels      map[string]string `json:"labels"`
	Fingerprint string            `json:"fingerprint"`
	BeforeS     float64           `json:"before_s"`
	AfterS      float64           `json:"after_s"`
}

// Poll keeps a long poll open to the server until ctx ends: the server
// never dials agents (they may sit behind NAT), so this is how its
// triggers arrive. Errors back off exponentially with jitter.
func (m *Manager) Poll(ctx context.Context, cfg ChannelConfig, log *slog.Logger) {
	if cfg.Wait == 0 {
		cfg.Wait = 30 * time.Second
	}
	client := &http.Client{Timeout: cfg.Wait + 15*time.Second}
	var after string
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		got, err := m.pollOnce(ctx, client, cfg, after)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
			log.Warn("trigger channel to the server failed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff/2 + rand.N(backoff/2+1)):
			}
			continue
		}
		backoff = 0
		for _, t := range got {
			after = t.ID
			m.Fire(Request{
				Kind: t.Kind, Reason: t.Reason, At: time.Unix(0, t.TimeNS), Selector: t.Selector, Labels: t.Labels,
				Fingerprint: t.Fingerprint, ServerID: t.ID, Key: "server/" + t.Kind + "/" + t.Fingerprint,
				Before: time.Duration(t.BeforeS * float64(time.Second)), After: time.Duration(t.AfterS * float64(time.Second)),
			})
		}
	}
}

func (m *Manager) pollOnce(ctx context.Context, client *http.Client, cfg ChannelConfig, after string) ([]serverTrigger, error) {
	q := url.Values{"node": {cfg.Node}, "agent": {cfg.AgentID}, "wait": {cfg.Wait.String()}}
	if after != "" {
		q.Set("after", after)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Server, "/")+"/api/v1/agent/triggers?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusOK:
		var r struct {
			Triggers []serverTrigger `json:"triggers"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("decode triggers: %w", err)
		}
		return r.Triggers, nil
	default:
		return nil, fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
}
