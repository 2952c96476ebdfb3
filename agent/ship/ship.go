// Package ship sends the agent's profiles to the server (docs/wire.md),
// retrying with backoff and jitter while it is away, from a bounded spool.
package ship

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Path is where the server receives agent profiles.
const Path = "/api/v1/ingest/agent"

// Config says where and how to ship.
type Config struct {
	Server     string        // base URL, e.g. http://flightrec:7070
	Token      string        // bearer token allowed to ingest; "" sends none
	AgentID    string        // prefix of idempotency keys: unique per agent run
	SpoolBytes int           // bound on profiles waiting to be sent
	MinBackoff time.Duration // first retry delay
	MaxBackoff time.Duration // retry delay cap
	Timeout    time.Duration // per request
}

func (c *Config) defaults() {
	if c.SpoolBytes == 0 {
		c.SpoolBytes = 16 << 20
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// Payload is one compressed pprof (Encoder) covering one reporting interval.
type Payload struct {
	Body []byte
	seq  uint64
}

// Shipper queues payloads and sends them in order from one goroutine.
type Shipper struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	m      metrics

	mu      sync.Mutex
	queue   []Payload
	queued  int // bytes in queue
	nextSeq uint64
	wake    chan struct{}
}

// New returns a shipper; call Run to start sending.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Shipper, error) {
	cfg.defaults()
	if !strings.HasPrefix(cfg.Server, "http://") && !strings.HasPrefix(cfg.Server, "https://") {
		return nil, fmt.Errorf("server URL %q must start with http:// or https://", cfg.Server)
	}
	cfg.Server = strings.TrimSuffix(cfg.Server, "/")
	return &Shipper{
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout},
		log:    log,
		m:      newMetrics(reg),
		wake:   make(chan struct{}, 1),
	}, nil
}

// Enqueue adds a payload without blocking. When the spool would exceed its
// bound the oldest payloads are dropped and counted: recent data is what an
// incident needs.
func (s *Shipper) Enqueue(body []byte) {
	s.mu.Lock()
	if len(body) > s.cfg.SpoolBytes {
		s.mu.Unlock()
		s.m.dropped.Inc()
		s.log.Warn("profile larger than the whole spool dropped", "bytes", len(body), "spool_bytes", s.cfg.SpoolBytes)
		return
	}
	s.nextSeq++
	s.queue = append(s.queue, Payload{Body: body, seq: s.nextSeq})
	s.queued += len(body)
	for s.queued > s.cfg.SpoolBytes {
		s.queued -= len(s.queue[0].Body)
		s.queue[0] = Payload{}
		s.queue = s.queue[1:]
		s.m.dropped.Inc()
	}
	s.m.spoolBytes.Set(float64(s.queued))
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx is done, then makes one last attempt to send what is
// queued within grace, and returns.
func (s *Shipper) Run(ctx context.Context, grace time.Duration) {
	// A send in flight when ctx ends may finish within grace: cutting it
	// off after the server stored the payload would only send it again.
	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	defer stop()
	backoff := time.Duration(0)
	for {
		p, ok := s.head()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		if backoff > 0 {
			select {
			case <-ctx.Done():
				s.flush(grace)
				return
			case <-time.After(jitter(backoff)):
			}
		}
		err := s.send(sendCtx, p)
		if ctx.Err() != nil {
			s.flush(grace)
			return
		}
		if err != nil {
			backoff = s.nextBackoff(backoff)
			s.log.Warn("ship profile failed, will retry", "err", err, "retry_in", backoff, "queued", s.Len())
			continue
		}
		backoff = 0
	}
}

// flush tries each queued payload once within grace, for shutdown.
func (s *Shipper) flush(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for {
		p, ok := s.head()
		if !ok || s.send(ctx, p) != nil {
			return
		}
	}
}

func (s *Shipper) nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return s.cfg.MinBackoff
	}
	return min(2*d, s.cfg.MaxBackoff)
}

// jitter spreads retries of a fleet over [d/2, d) so agents that lost the
// server together do not return together.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func (s *Shipper) head() (Payload, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return Payload{}, false
	}
	return s.queue[0], true
}

// done removes p if it is still at the head (Enqueue may have dropped it).
func (s *Shipper) done(p Payload) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 && s.queue[0].seq == p.seq {
		s.queued -= len(p.Body)
		s.queue[0] = Payload{}
		s.queue = s.queue[1:]
		s.m.spoolBytes.Set(float64(s.queued))
	}
}

// Len is the number of payloads waiting.
func (s *Shipper) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// send posts p once. A rejection (4xx other than 408/429) is final: the
// server said the payload is wrong, and resending it cannot help.
func (s *Shipper) send(ctx context.Context, p Payload) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.Server+Path, bytes.NewReader(p.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/vnd.google.protobuf")
	req.Header.Set("Content-Encoding", ContentEncoding)
	req.Header.Set("Idempotency-Key", fmt.Sprintf("%s-%d", s.cfg.AgentID, p.seq))
	if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.m.failures.WithLabelValues("network").Inc()
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		s.m.shippedBytes.Add(float64(len(p.Body)))
		s.m.shipped.Inc()
		s.done(p)
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		s.m.rejected.Inc()
		s.log.Error("server rejected profile; dropping it", "status", resp.Status, "message", strings.TrimSpace(string(msg)))
		s.done(p)
		return nil
	default:
		s.m.failures.WithLabelValues("status").Inc()
		return fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
}

type metrics struct {
	shipped, shippedBytes, dropped, rejected prometheus.Counter
	failures                                 *prometheus.CounterVec
	spoolBytes                               prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		shipped:      prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_shipped_profiles_total", Help: "Profiles the server acknowledged."}),
		shippedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_shipped_bytes_total", Help: "Bytes of profiles the server acknowledged."}),
		dropped:      prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_spool_dropped_total", Help: "Profiles dropped because the spool was full."}),
		rejected:     prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_ship_rejected_total", Help: "Profiles the server refused as invalid (not retried)."}),
		failures:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flightrec_agent_ship_failures_total", Help: "Failed attempts to ship, retried."}, []string{"reason"}),
		spoolBytes:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "flightrec_agent_spool_bytes", Help: "Bytes of profiles waiting to be shipped."}),
	}
	if reg != nil {
		reg.MustRegister(m.shipped, m.shippedBytes, m.dropped, m.rejected, m.failures, m.spoolBytes)
	}
	return m
}
