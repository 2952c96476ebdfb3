package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/google/pprof/profile"
)

// queryDef is one measured query.
type queryDef struct {
	Name   string
	Path   string
	Params url.Values
	Target time.Duration // 0: none
	// check validates a response body and returns a short summary.
	check func(body []byte) (string, error)
}

type queryResult struct {
	Def      queryDef
	First    time.Duration
	Times    []time.Duration // the repetitions after the first
	Bytes    int             // response body, as sent (gzip when the server compresses)
	Summary  string
	P50, P99 time.Duration
}

// expectations are what the queries must find.
type expectations struct {
	apiCPU   int64 // nanoseconds sent for service api
	apiNodes int
}

func queries(from, to time.Time, want expectations) []queryDef {
	rng := func(extra ...string) url.Values {
		v := url.Values{"from": {strconv.FormatInt(from.Unix(), 10)}, "to": {strconv.FormatInt(to.Unix(), 10)}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	sel := `cpu{service="api"}`
	total := func(name string, got int64) (string, error) {
		if got != want.apiCPU {
			return "", fmt.Errorf("%s total %d ns, sent %d ns for api (%+.6f%%)", name, got, want.apiCPU,
				100*float64(got-want.apiCPU)/float64(want.apiCPU))
		}
		return fmt.Sprintf("total %.1f cpu-s = sent", float64(got)/1e9), nil
	}
	return []queryDef{
		{Name: "merge: flamegraph", Path: "/api/v1/flamegraph", Params: rng("query", sel), Target: time.Second,
			check: func(b []byte) (string, error) {
				var r struct {
					Total     int64    `json:"total"`
					Names     []string `json:"names"`
					Truncated bool     `json:"truncated"`
					Nodes     struct {
						Name []int32 `json:"name"`
					} `json:"nodes"`
				}
				if err := json.Unmarshal(b, &r); err != nil {
					return "", err
				}
				s, err := total("flamegraph", r.Total)
				return fmt.Sprintf("%s, %d nodes (truncated %v)", s, len(r.Nodes.Name), r.Truncated), err
			}},
		{Name: "merge: pprof", Path: "/api/v1/pprof", Params: rng("query", sel), Target: time.Second,
			check: func(b []byte) (string, error) {
				p, err := profile.ParseData(b)
				if err != nil {
					return "", err
				}
				var sum int64
				for _, s := range p.Sample {
					sum += s.Value[0]
				}
				s, err := total("pprof", sum)
				return fmt.Sprintf("%s, %d samples, %d locations", s, len(p.Sample), len(p.Location)), err
			}},
		{Name: "top functions", Path: "/api/v1/top", Params: rng("query", sel, "limit", "50"),
			check: func(b []byte) (string, error) {
				var r struct {
					Total     int64 `json:"total"`
					Count     int   `json:"count"`
					Functions []struct {
						Name string `json:"name"`
						Self int64  `json:"self"`
					} `json:"functions"`
				}
				if err := json.Unmarshal(b, &r); err != nil {
					return "", err
				}
				s, err := total("top", r.Total)
				if err == nil && len(r.Functions) == 0 {
					err = fmt.Errorf("top: no functions")
				}
				top := ""
				if len(r.Functions) > 0 {
					top = fmt.Sprintf(", first %s (%.1f%% self)", r.Functions[0].Name, 100*float64(r.Functions[0].Self)/float64(r.Total))
				}
				return fmt.Sprintf("%s, %d functions%s", s, r.Count, top), err
			}},
		{Name: "label values", Path: "/api/v1/labels/node/values", Params: rng("query", `{service="api"}`), Target: 50 * time.Millisecond,
			check: func(b []byte) (string, error) {
				var r struct {
					Values []string `json:"values"`
				}
				if err := json.Unmarshal(b, &r); err != nil {
					return "", err
				}
				if len(r.Values) != want.apiNodes {
					return "", fmt.Errorf("label values: %d nodes, want %d", len(r.Values), want.apiNodes)
				}
				return fmt.Sprintf("%d values", len(r.Values)), nil
			}},
		{Name: "series over time", Path: "/api/v1/series", Params: rng("query", sel, "step", "1m"),
			check: func(b []byte) (string, error) {
				var r struct {
					Series []struct {
						Points [][2]int64 `json:"points"`
					} `json:"series"`
				}
				if err := json.Unmarshal(b, &r); err != nil {
					return "", err
				}
				var sum int64
				points := 0
				for _, s := range r.Series {
					for _, p := range s.Points {
						sum += p[1]
						points++
					}
				}
				if len(r.Series) != want.apiNodes {
					return "", fmt.Errorf("series: %d series, want %d", len(r.Series), want.apiNodes)
				}
				s, err := total("series", sum)
				return fmt.Sprintf("%s, %d series × %d points", s, len(r.Series), points/max(1, len(r.Series))), err
			}},
	}
}

// runQuery runs q once (the first, cold run) and then reps times.
func runQuery(ctx context.Context, base string, q queryDef, reps int) (*queryResult, error) {
	client := &http.Client{Timeout: 5 * time.Minute}
	u := base + q.Path + "?" + q.Params.Encode()
	res := &queryResult{Def: q}
	for i := 0; i <= reps; i++ {
		d, body, sent, err := get(ctx, client, u)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.Name, err)
		}
		if i == 0 {
			res.First, res.Bytes = d, sent
			if res.Summary, err = q.check(body); err != nil {
				return nil, fmt.Errorf("%s: sanity check: %w", q.Name, err)
			}
			continue
		}
		res.Times = append(res.Times, d)
		if i == reps {
			if _, err := q.check(body); err != nil {
				return nil, fmt.Errorf("%s (last run): sanity check: %w", q.Name, err)
			}
		}
	}
	s := slices.Clone(res.Times)
	slices.Sort(s)
	res.P50, res.P99 = percentile(s, 0.50), percentile(s, 0.99)
	return res, nil
}

// percentile is the nearest-rank percentile of sorted xs.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := int(float64(len(xs))*p+0.999999) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// get fetches u the way a browser does (gzip accepted) and times it until
// the body is read; it returns the decoded body and the bytes on the wire.
func get(ctx context.Context, client *http.Client, u string) (time.Duration, []byte, int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	wire, err := io.ReadAll(resp.Body)
	d := time.Since(t0)
	if err != nil {
		return 0, nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, nil, 0, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(wire[:min(len(wire), 512)]))
	}
	body := wire
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if body, err = gunzip(wire); err != nil {
			return 0, nil, 0, err
		}
	}
	return d, body, len(wire), nil
}
