package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flightrec/flightrec/agent"
	"github.com/flightrec/flightrec/agent/admin"
	"github.com/flightrec/flightrec/agent/sampler"
	"github.com/flightrec/flightrec/agent/ship"
	"github.com/flightrec/flightrec/agent/trigger"
)

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func runAgent(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	server := fs.String("server", "", "flightrec server URL, e.g. http://127.0.0.1:7070 (required)")
	freq := fs.Int("frequency", agent.DefaultFrequency, "samples per second on each CPU (1-1000)")
	interval := fs.Duration("interval", agent.DefaultInterval, "reporting interval")
	adminAddr := fs.String("admin", "127.0.0.1:7071", "admin HTTP address (/metrics, /healthz, /debug/pprof/); empty disables")
	tokenFile := fs.String("token-file", "", "file holding a bearer token allowed to ingest")
	node := fs.String("node", defaultNode(), "node label")
	cacheDir := fs.String("cache-dir", defaultCacheDir, "directory for what survives restarts (kernel symbols); empty disables")
	spool := fs.Int("spool-bytes", 16<<20, "bound on profiles held while the server is away")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	offCPU := offCPUFlags(fs)
	rec := newRecorderFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := offCPU.validate(); err != nil {
		return err
	}
	if err := rec.validate(); err != nil {
		return err
	}
	if *server == "" {
		return usagef("--server is required")
	}
	if *freq < sampler.MinFrequency || *freq > sampler.MaxFrequency {
		return usagef("--frequency %d is out of range [%d, %d]", *freq, sampler.MinFrequency, sampler.MaxFrequency)
	}
	if *interval < time.Second {
		return usagef("--interval %v is shorter than 1s", *interval)
	}
	if *spool <= 0 {
		return usagef("--spool-bytes %d must be positive", *spool)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	id := agentID(*node)
	shipper, err := ship.New(ship.Config{Server: *server, Token: token, AgentID: id, SpoolBytes: *spool}, log, reg)
	if err != nil {
		return usageError{err}
	}
	fr, err := newFlightRecorder(rec, *server, token, *freq, log, reg)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The flight recorder's ring is off the heap (agent/recorder's
		// arena); its stack cache and everything else the agent holds
		// count in the live heap that the limit follows.
		go adaptMemoryLimit(ctx, memoryLimit)
	}
	var a *agent.Agent
	cfg := agent.Config{Frequency: *freq, Interval: *interval, Node: *node, CacheDir: *cacheDir,
		OffCPU: *offCPU.on, MinOffCPU: *offCPU.min}
	fr.configure(&cfg, rec, *node, &a, log, reg)
	if a, err = agent.New(cfg, log, reg); err != nil {
		return err
	}
	defer a.Close()

	if *adminAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/", admin.Handler(reg, a.Healthy))
		if fr != nil {
			mux.Handle("/trigger", fr.manager.AdminHandler())
		}
		stopAdmin, err := serveAdmin(*adminAddr, mux, log)
		if err != nil {
			return err
		}
		defer stopAdmin()
	}
	// The shipper outlives the agent's context: the last partial interval
	// is queued after SIGTERM and must still be sent.
	shipCtx, stopShipping := context.WithCancel(context.Background())
	defer stopShipping()
	shipped := make(chan struct{})
	go func() { shipper.Run(shipCtx, 5*time.Second); close(shipped) }()
	recorderDone := closedChan()
	if fr != nil {
		recorderDone = fr.run(ctx, shipCtx, trigger.ChannelConfig{Server: *server, Token: token, Node: *node, AgentID: id}, log)
	}

	log.Info("agent running", "server", *server, "frequency_hz", *freq, "interval", *interval, "node", *node)
	var enc ship.Encoder // emit runs on the agent's one goroutine
	err = a.Run(ctx, func(p *profile.Profile) {
		body, err := enc.Encode(p)
		if err != nil {
			log.Error("encode profile", "err", err)
			return
		}
		shipper.Enqueue(body)
	})
	if fr != nil {
		// Snapshots cut short by the stop are being handed to the spool.
		waitCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fr.manager.Wait(waitCtx)
		cancel()
	}
	stopShipping()
	<-shipped
	<-recorderDone
	attrs := []any{"unshipped_profiles", shipper.Len()}
	if fr != nil {
		attrs = append(attrs, "unshipped_snapshots", fr.spool.Pending())
	}
	log.Info("agent stopped", attrs...)
	return err
}

func serveAdmin(addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server", "err", err)
		}
	}()
	return func() { srv.Close() }, nil
}

func readToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("read --token-file: %v", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// agentID makes idempotency keys unique across agents and restarts.
func agentID(node string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return node + "-" + hex.EncodeToString(b[:])
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "flightrec-agent " + s.Value
			}
		}
		return "flightrec-agent " + bi.Main.Version
	}
	return "flightrec-agent (unknown version)"
}
