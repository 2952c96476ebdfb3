package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server"
	"github.com/flightrec/flightrec/server/auth"
	"github.com/flightrec/flightrec/server/triggers"
)

func runServer(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("server", e)
	data := fs.String("data", "./data", "directory of the embedded store")
	listen := fs.String("listen", "127.0.0.1:7070", "HTTP address: API, ingest, UI")
	otlpGRPC := fs.String("otlp-grpc-listen", "", "address of the OTLP gRPC receiver, e.g. 127.0.0.1:4317 (empty: off)")
	retention := fs.String("retention", "14d", "keep data this long (e.g. 14d, 36h); 0 keeps everything")
	tokenFile := fs.String("auth-token-file", "", "file of \"<ingest|read|all> <token>\" lines; without it every request is allowed")
	maxLabelValues := fs.Int("max-label-values", 100, "distinct values a pprof sample label may take per series before it is dropped")
	maxBody := fs.Int64("max-body-bytes", 32<<20, "largest compressed request body accepted")
	memory := fs.String("memory-limit", "512MB", "memory DuckDB may use for caching and queries (the Go heap comes on top)")
	maintenance := fs.Duration("maintenance-interval", time.Minute, "how often rollups and compaction run")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	alertLabels := fs.String("alert-labels", triggers.DefaultAlertLabels, "alert labels that select the nodes an Alertmanager alert snapshots; alert=series renames, e.g. job=service")
	alertCooldown := fs.Duration("alert-cooldown", 10*time.Minute, "one snapshot per alert fingerprint within this long")
	triggerRate := fs.String("trigger-rate-limit", "10/10m", "at most this many triggers (manual and alert) per period, COUNT/DURATION")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	keep, err := parseRetention(*retention)
	if err != nil {
		return err
	}
	if *maxLabelValues < 1 || *maxBody < 1024 {
		return usagef("--max-label-values must be at least 1 and --max-body-bytes at least 1024")
	}
	log, err := newLogger(e.stderr, *logLevel)
	if err != nil {
		return err
	}
	tc, err := triggerConfig(*alertLabels, *alertCooldown, *triggerRate)
	if err != nil {
		return err
	}
	var tokens *auth.Tokens
	if *tokenFile != "" {
		if tokens, err = auth.Load(*tokenFile); err != nil {
			return usageError{err}
		}
	} else if !loopback(*listen) {
		log.Warn("listening on a non-loopback address without --auth-token-file: anyone who can reach it can read and write profiles", "listen", *listen)
	}
	s, err := server.New(server.Config{
		DataDir: *data, Listen: *listen, OTLPGRPCListen: *otlpGRPC, Retention: keep,
		Tokens: tokens, MaxLabelValues: *maxLabelValues, MaxBodyBytes: *maxBody, MemoryLimit: *memory, Maintenance: *maintenance, Logger: log,
		Triggers: tc,
	})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// parseRetention accepts Go durations plus a "d" (days) suffix.
func parseRetention(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, usagef("bad --retention %q: want e.g. 14d or 36h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Hour {
		return 0, usagef("bad --retention %q: want e.g. 14d or 36h (at least 1h)", s)
	}
	return d, nil
}

// loopback reports whether addr only listens on the local machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
