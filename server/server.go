package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/auth"
	"github.com/flightrec/flightrec/server/ingest"
	"github.com/flightrec/flightrec/server/ingest/otlp"
	"github.com/flightrec/flightrec/server/snapshots"
	"github.com/flightrec/flightrec/server/store/duckdb"
	"github.com/flightrec/flightrec/server/triggers"
	"github.com/flightrec/flightrec/ui"
)

// Config is what `flightrec server` is started with.
type Config struct {
	DataDir        string
	Listen         string        // HTTP address, e.g. 127.0.0.1:7070
	OTLPGRPCListen string        // "" disables the OTLP gRPC receiver
	Retention      time.Duration // 0 keeps everything
	Tokens         *auth.Tokens  // nil: no authentication
	MaxLabelValues int           // per series and sample-label name
	MaxBodyBytes   int64         // compressed request bodies
	MemoryLimit    string        // DuckDB's buffer limit
	Maintenance    time.Duration // how often rollups and compaction run; default 1m
	Logger         *slog.Logger

	// Triggers bound the flight recorder's triggers (docs/triggers.md).
	Triggers triggers.Config
}

// Server is a running flightrec server.
type Server struct {
	cfg   Config
	log   *slog.Logger
	reg   *prometheus.Registry
	store *duckdb.Store
	mux   *http.ServeMux
	grpc  *grpc.Server
	m     metrics
}

// New opens the store and builds the handlers; Run serves them.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Maintenance <= 0 {
		cfg.Maintenance = time.Minute
	}
	st, err := duckdb.Open(cfg.DataDir, duckdb.Options{MemoryLimit: cfg.MemoryLimit, MaintainEvery: cfg.Maintenance, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(), store: st, mux: http.NewServeMux()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.m = newMetrics(s.reg)
	if err := s.routes(); err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

// routes registers every endpoint behind the scope it needs.
func (s *Server) routes() error {
	tokens := s.cfg.Tokens
	ingestMux := http.NewServeMux()
	h := &ingest.Handler{Sink: s.store, Logger: s.log, Metrics: s.reg,
		Limits: ingest.Limits{MaxBodyBytes: s.cfg.MaxBodyBytes}, MaxDecoding: ingestConcurrency}
	if s.cfg.MaxLabelValues > 0 {
		h.Limiter = ingest.NewLimiter(ingest.LimiterConfig{MaxLabelValues: s.cfg.MaxLabelValues, Logger: s.log, Registerer: s.reg})
	}
	h.Register(ingestMux)
	om, err := otlp.NewMetrics(s.reg)
	if err != nil {
		return fmt.Errorf("otlp metrics: %w", err)
	}
	otlpOpts := []otlp.Option{otlp.WithMetrics(om), otlp.WithLogger(s.log)}
	// The ingest handler bounds its own decoding (ingest.Handler.MaxDecoding)
	// and frees a request's memory before waiting for its commit; OTLP's
	// receiver holds a request until it is stored, so it is bounded whole.
	ingestMux.Handle("POST /v1development/profiles", limitConcurrency(ingestConcurrency, otlp.NewHTTPHandler(s.store, otlpOpts...)))
	for _, p := range []string{ingest.AgentPath, ingest.PprofPath, ingest.PyroscopePath, "/v1development/profiles"} {
		s.mux.Handle(p, tokens.Require(auth.Ingest, ingestMux))
	}

	readMux := http.NewServeMux()
	api.New(s.store, api.Options{Logger: s.log, Registerer: s.reg}).Register(readMux)
	s.mux.Handle("/api/v1/", tokens.Require(auth.Read, readMux))

	// Flight recorder: snapshots (docs/snapshot.md) and triggers (docs/triggers.md).
	if _, err := snapshots.Register(s.mux, snapshots.Config{Dir: filepath.Join(s.cfg.DataDir, "snapshots"),
		Retention: s.cfg.Retention, Tokens: tokens, Logger: s.log, Registerer: s.reg}); err != nil {
		return fmt.Errorf("snapshots: %w", err)
	}
	tc := s.cfg.Triggers
	tc.Logger, tc.Registerer = s.log, s.reg
	triggers.New(triggers.StoreResolver{Store: s.store}, tc).Register(s.mux, tokens)

	s.mux.Handle("/debug/pprof/", tokens.Require(auth.Read, http.HandlerFunc(pprof.Index)))
	for name, h := range map[string]http.HandlerFunc{"cmdline": pprof.Cmdline, "profile": pprof.Profile, "symbol": pprof.Symbol, "trace": pprof.Trace} {
		s.mux.Handle("/debug/pprof/"+name, tokens.Require(auth.Read, h))
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	// The web UI: static assets without data, so no scope; every other
	// path is one of its routes.
	s.mux.Handle("/", ui.Handler())

	if s.cfg.OTLPGRPCListen != "" {
		opts := append(otlp.GRPCServerOptions(), grpc.UnaryInterceptor(grpcAuth(tokens)))
		s.grpc = grpc.NewServer(opts...)
		otlp.RegisterGRPC(s.grpc, s.store, otlpOpts...)
	}
	return nil
}

// ingestConcurrency bounds requests decoded at once, per protocol: each may
// inflate up to the decompressed-size limit, so this bounds ingest memory.
// Decoding is CPU bound, so more than a few per core only adds memory.
const ingestConcurrency = 8

// limitConcurrency queues requests beyond n; a client that gives up while
// queued (its context ends) gets 503 and retries later.
func limitConcurrency(n int, next http.Handler) http.Handler {
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
			http.Error(w, `{"error":"server busy"}`, http.StatusServiceUnavailable)
		}
	})
}

// Handler serves the HTTP API (for tests that run it in process).
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves until ctx ends, then shuts down gracefully and closes the
// store: acknowledged data is on disk before Run returns.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.store.Close()
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	if s.grpc != nil {
		gln, err := net.Listen("tcp", s.cfg.OTLPGRPCListen)
		if err != nil {
			srv.Close()
			s.store.Close()
			return fmt.Errorf("listen for OTLP gRPC on %s: %w", s.cfg.OTLPGRPCListen, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.grpc.Serve(gln); err != nil {
				errc <- fmt.Errorf("otlp grpc server: %w", err)
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.housekeeping(ctx) }()
	s.log.Info("flightrec server listening", "http", ln.Addr().String(), "otlp_grpc", s.cfg.OTLPGRPCListen, "data", s.cfg.DataDir)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if s.grpc != nil {
		s.grpc.GracefulStop()
	}
	wg.Wait()
	return errors.Join(err, s.store.Close())
}

// housekeeping applies retention and exports the store's size.
func (s *Server) housekeeping(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	lastRetention := time.Time{}
	for {
		if st, err := s.store.Stats(ctx); err == nil {
			s.m.diskBytes.Set(float64(st.DiskBytes))
			s.m.profiles.Set(float64(st.Profiles))
			s.m.series.Set(float64(st.Series))
		}
		if s.cfg.Retention > 0 && time.Since(lastRetention) > 10*time.Minute {
			lastRetention = time.Now()
			if err := s.store.DeleteBefore(ctx, time.Now().Add(-s.cfg.Retention)); err != nil && ctx.Err() == nil {
				s.log.Error("retention failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type metrics struct {
	diskBytes, profiles, series prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		diskBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flightrec_store_disk_bytes", Help: "Bytes of the store on disk (database and WAL)."}),
		profiles:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "flightrec_store_profiles", Help: "Profiles stored."}),
		series:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "flightrec_store_series", Help: "Series known."}),
	}
	reg.MustRegister(m.diskBytes, m.profiles, m.series)
	return m
}
