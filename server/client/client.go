// Package client is a Go client of the flightrec HTTP API (docs/api.md),
// used by the command-line client and tests.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/api"
)

// Client calls one server. Its fields must not change while it is in use.
type Client struct {
	base *url.URL
	// Token, if set, is sent as "Authorization: Bearer <Token>".
	Token string
	// HTTP does the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// UserAgent, if set, replaces Go's.
	UserAgent string
}

// New returns a client of the server at base, e.g. "http://127.0.0.1:7070".
func New(base string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("bad server URL %q: %w", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bad server URL %q: want http://host:port or https://host:port", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u}, nil
}

// Error is an answer other than 2xx: Message is the server's error text.
type Error struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// maxErrorBody bounds how much of a non-JSON error body (a proxy's HTML
// page) is quoted.
const maxErrorBody = 512

// do sends a request to path (escaped) and returns the body and headers of
// a 2xx answer.
func (c *Client) do(ctx context.Context, method, path string, params url.Values, body []byte) ([]byte, http.Header, error) {
	u := *c.base
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	u.Path, u.RawPath = u.Path+unescaped, u.EscapedPath()+path
	u.RawQuery = params.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, c.base.Redacted()+path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, nil, &Error{Method: method, Path: path, Status: resp.StatusCode, Message: errorMessage(data)}
	}
	return data, resp.Header, nil
}

// unwrapURLError drops url.Error's "Get \"url\":" prefix, which do's own
// context already says.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func errorMessage(body []byte) string {
	var e api.ErrorResponse
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > maxErrorBody {
		s = s[:maxErrorBody] + "..."
	}
	if s == "" {
		s = "(no message)"
	}
	return s
}

// getJSON does a GET and decodes the answer into v.
func (c *Client) getJSON(ctx context.Context, path string, params url.Values, v any) error {
	data, _, err := c.do(ctx, http.MethodGet, path, params, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	return nil
}

// selection encodes the parameters the stack endpoints share; empty
// strings are left out, for the server's defaults.
func selection(query, from, to, typ string) url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{{"query", query}, {"from", from}, {"to", to}, {"type", typ}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}

// Pprof downloads the merged profile of the series query selects over
// [from, to) (times as the server parses them: RFC 3339, Unix seconds,
// "-1h", ...), gzipped pprof. typ is the type if query names none.
func (c *Client) Pprof(ctx context.Context, query, from, to, typ string) ([]byte, error) {
	data, _, err := c.FetchPprof(ctx, query, from, to, typ)
	return data, err
}

// FetchPprof is Pprof also returning the server's message about an empty
// profile (why nothing matched), "" otherwise.
func (c *Client) FetchPprof(ctx context.Context, query, from, to, typ string) (data []byte, message string, err error) {
	data, h, err := c.do(ctx, http.MethodGet, api.PprofPath, selection(query, from, to, typ), nil)
	if err != nil {
		return nil, "", err
	}
	return data, h.Get(api.MessageHeader), nil
}

// Flamegraph returns the call tree; maxNodes 0 means the server's limit.
func (c *Client) Flamegraph(ctx context.Context, query, from, to, typ string, maxNodes int) (*api.FlamegraphResponse, error) {
	v := selection(query, from, to, typ)
	if maxNodes > 0 {
		v.Set("max_nodes", strconv.Itoa(maxNodes))
	}
	var out api.FlamegraphResponse
	return &out, c.getJSON(ctx, api.FlamegraphPath, v, &out)
}

// Top returns the top functions by order ("self" or "total", "" for the
// server's default, self); limit 0 means the server's default, 50.
func (c *Client) Top(ctx context.Context, query, from, to, typ, order string, limit int) (*api.TopResponse, error) {
	v := selection(query, from, to, typ)
	if order != "" {
		v.Set("order", order)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out api.TopResponse
	return &out, c.getJSON(ctx, api.TopPath, v, &out)
}

// Series returns totals over time per series, or per distinct values of
// the by labels if by is not nil (an empty by sums everything into one
// series); step 0 lets the server choose.
func (c *Client) Series(ctx context.Context, query, from, to, typ string, step time.Duration, by []string) (*api.SeriesResponse, error) {
	v := selection(query, from, to, typ)
	if step > 0 {
		v.Set("step", step.String())
	}
	if by != nil {
		v.Set("by", strings.Join(by, ","))
	}
	var out api.SeriesResponse
	return &out, c.getJSON(ctx, api.SeriesPath, v, &out)
}

// Labels lists label names of the series query selects (all if ""), of
// type typ (all types if "" and query names none).
func (c *Client) Labels(ctx context.Context, query, from, to, typ string) ([]string, error) {
	var out api.LabelsResponse
	err := c.getJSON(ctx, api.LabelsPath, selection(query, from, to, typ), &out)
	return out.Names, err
}

// LabelValues lists the values of label name, narrowed like Labels.
func (c *Client) LabelValues(ctx context.Context, name, query, from, to, typ string) ([]string, error) {
	var out api.LabelValuesResponse
	path := strings.Replace(api.LabelValuesPath, "{name}", url.PathEscape(name), 1)
	err := c.getJSON(ctx, path, selection(query, from, to, typ), &out)
	return out.Values, err
}

// Types lists the profile types with data in [from, to).
func (c *Client) Types(ctx context.Context, from, to string) ([]api.Type, error) {
	var out api.TypesResponse
	err := c.getJSON(ctx, api.TypesPath, selection("", from, to, ""), &out)
	return out.Types, err
}

// IngestPath is where Upload sends profiles.
const IngestPath = "/api/v1/ingest"

// IngestResult is the ingest endpoint's answer.
type IngestResult struct {
	Profiles int `json:"profiles"` // stored profiles
	Samples  int `json:"samples"`  // stacks stored, over all profiles
}

// Upload sends a pprof profile (gzipped or not) to be stored with the
// series labels given in selector syntax, e.g. {service="api"}.
func (c *Client) Upload(ctx context.Context, labels string, body []byte) error {
	_, err := c.Ingest(ctx, labels, body)
	return err
}

// Ingest is Upload returning what the server stored.
func (c *Client) Ingest(ctx context.Context, labels string, body []byte) (IngestResult, error) {
	v := url.Values{}
	if labels != "" {
		v.Set("labels", labels)
	}
	var out IngestResult
	data, _, err := c.do(ctx, http.MethodPost, IngestPath, v, body)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("POST %s: decode answer: %w", IngestPath, err)
	}
	return out, nil
}
