// Command bench-server measures the flightrec server as the issue's
// benchmark defines it: a generated fleet (by default 1,000 nodes running
// api, db and worker services, 10 s CPU profiles of a few hundred stacks
// drawn from a universe of ~20,000 stacks of depth 10–60) sends one hour
// of data over HTTP on loopback from concurrent clients, as fast as the
// server takes it; then the bench waits for rollups and compaction and
// times the queries a UI makes. It prints a markdown table of ingest rate,
// server CPU and peak RSS, bytes on disk per stored stack value and query
// latencies against the targets.
//
// The clients (32 by default) stand for a fleet's agents, which post
// independently: a thousand nodes have many requests in flight whenever
// the server is busy. With few clients the bench measures how long a
// request waits for its group commit rather than what the server can
// take: 8 clients all wait in the same commit, and the CPU idles.
//
//	make bench-server
//	bin/bench-server -flightrec bin/flightrec [-nodes 1000] [-hour 1h] [-clients 32] [-out FILE]
//	bin/bench-server -flightrec bin/flightrec -quick   # 100 nodes, 5 minutes of data: smoke test
//
// The server runs as a child process (`flightrec server --maintenance-interval
// 5s`) on a free 127.0.0.1 port with its store in -data (default: a
// temporary directory, removed at exit unless -keep). Everything the bench
// starts is stopped on exit, on errors and on SIGINT/SIGTERM.
//
// Exit status: 0 when the run completed (targets may still FAIL; read the
// table), 1 when it failed or a sanity check did not hold (the server
// rejected a profile, a merge did not add up to what was sent, ...), 2 on
// bad usage.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-server: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

type errUsage struct{ error }

func main() { os.Exit(mainCode()) }

func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	err := run(ctx, os.Args[1:])
	var uerr errUsage
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &uerr):
		logf("%v", err)
		return 2
	case ctx.Err() != nil:
		logf("interrupted; the server is stopped")
		return 1
	default:
		logf("%v", err)
		return 1
	}
}

type options struct {
	flightrec     string
	nodes         int
	span          time.Duration
	clients       int
	dataDir       string
	keep          bool
	quick         bool
	out           string
	reps          int
	variants      int
	seed          uint64
	functions     int
	stacks        int
	settle        time.Duration
	settleTimeout time.Duration
	memoryLimit   string
	maintenance   time.Duration
	profileDir    string
	breakdown     bool
}

func run(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("bench-server", flag.ContinueOnError)
	fs.StringVar(&o.flightrec, "flightrec", "bin/flightrec", "flightrec binary (runs `flightrec server`)")
	fs.IntVar(&o.nodes, "nodes", 1000, "nodes in the fleet (api on all, db on 10%, worker on 30%)")
	fs.DurationVar(&o.span, "hour", time.Hour, "data to send: [T-hour, T) in 10 s intervals, T = bench start")
	fs.IntVar(&o.clients, "clients", 32, "concurrent HTTP clients: agents with a request in flight")
	fs.StringVar(&o.dataDir, "data", "", "the server's data directory, empty or absent (default: a temporary directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary data directory")
	fs.BoolVar(&o.quick, "quick", false, "smoke test: -nodes 100 -hour 5m -settle 10s unless given")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.IntVar(&o.reps, "reps", 20, "timed repetitions of each query after its first run")
	fs.IntVar(&o.variants, "variants", 0, "distinct payloads per node group (default: one per interval, at most 360)")
	fs.Uint64Var(&o.seed, "seed", 1, "generator seed")
	fs.IntVar(&o.functions, "functions", 5000, "functions in the fleet's code")
	fs.IntVar(&o.stacks, "stacks", 20000, "distinct stacks in the universe")
	fs.DurationVar(&o.settle, "settle", 20*time.Second, "after ingest, the store is settled when its size and the server's CPU have been still this long")
	fs.DurationVar(&o.settleTimeout, "settle-timeout", 20*time.Minute, "give up waiting for maintenance after this long")
	// DuckDB's limit, not the process's; empty runs the server with its
	// default (512MB). Values are one packed row per profile, so DuckDB
	// holds far less than when it sorted a row per stack value.
	fs.StringVar(&o.memoryLimit, "memory-limit", "", "the server's --memory-limit (DuckDB's share of the 1 GiB RSS target; empty: the server's default)")
	fs.DurationVar(&o.maintenance, "maintenance-interval", 5*time.Second, "the server's --maintenance-interval")
	fs.StringVar(&o.profileDir, "profile-dir", "", "save Go CPU profiles of the server (during ingest and the merge queries) here")
	fs.BoolVar(&o.breakdown, "breakdown", true, "after stopping the server, open the store read-only and report where the bytes are")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage{err}
	}
	if fs.NArg() > 0 {
		return errUsage{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["nodes"] {
			o.nodes = 100
		}
		if !set["hour"] {
			o.span = 5 * time.Minute
		}
		if !set["settle"] {
			o.settle = 10 * time.Second
		}
	}
	switch {
	case o.nodes < 1:
		return errUsage{errors.New("-nodes must be at least 1")}
	case o.span < intervalNS || o.span%intervalNS != 0:
		return errUsage{errors.New("-hour must be a positive multiple of 10s")}
	case o.clients < 1 || o.reps < 1:
		return errUsage{errors.New("-clients and -reps must be at least 1")}
	case o.functions < 500 || o.stacks < 1000:
		return errUsage{errors.New("-functions must be at least 500 and -stacks at least 1000")}
	}
	if fi, err := os.Stat(o.flightrec); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errUsage{fmt.Errorf("-flightrec %s is not an executable file (make bench-server builds bin/flightrec)", o.flightrec)}
	}
	intervals := int(o.span / intervalNS)
	if o.variants <= 0 {
		o.variants = min(intervals, 360)
	}

	// Data directory.
	if o.dataDir == "" {
		dir, err := os.MkdirTemp("", "bench-server-")
		if err != nil {
			return err
		}
		o.dataDir = dir
		if o.keep {
			defer logf("kept data directory %s", dir)
		} else {
			defer os.RemoveAll(dir)
		}
	} else {
		if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
			return err
		}
		if ents, _ := os.ReadDir(o.dataDir); len(ents) > 0 {
			return errUsage{fmt.Errorf("-data %s is not empty: the bench needs a fresh store", o.dataDir)}
		}
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	storeDir := filepath.Join(o.dataDir, "store")

	rp := &report{
		Command: shellQuote(os.Args), Date: time.Now(), Kernel: kernelRelease(), CPU: cpuModel(), CPUs: runtime.NumCPU(),
		Opts: o, Intervals: intervals,
	}

	// Generate.
	t0, c0 := time.Now(), selfCPU()
	r := newRand(o.seed, 1, 0)
	u := newUniverse(r, o.functions, o.stacks)
	svcs := newServices(r, u)
	f := newFleet(r, o.nodes, svcs)
	buildVariants(f, u, o.variants, o.seed)
	rp.Gen = genStats(u, f, time.Since(t0), selfCPU()-c0)
	logf("generated %d functions, %d locations, %d stacks (%d prefix nodes), %d node groups × %d payloads in %v",
		len(u.funcs), len(u.locs), len(u.stacks), rp.Gen.PrefixNodes, len(f.groups), o.variants, rp.Gen.Wall.Round(time.Millisecond))

	// Start the server.
	serverArgs := []string{"--maintenance-interval", o.maintenance.String()}
	if o.memoryLimit != "" {
		serverArgs = append(serverArgs, "--memory-limit", o.memoryLimit)
	}
	srv, err := startServer(ctx, o.flightrec, storeDir, filepath.Join(o.dataDir, "server.log"), serverArgs)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			if _, err := srv.stop(30 * time.Second); err != nil {
				logf("stop server: %v", err)
			}
		}
	}()
	rp.ServerArgs = strings.Join(srv.cmd.Args[1:], " ")

	// Ingest one span of data ending now.
	end := rp.Date.Truncate(time.Second)
	start := end.Add(-o.span)
	logf("ingest: %d intervals × %d nodes = %d requests (%d profiles), %d clients", intervals, o.nodes,
		intervals*o.nodes, intervals*f.profilesPerInterval(), o.clients)
	ing, err := ingest(ctx, srv, f, start, intervals, o.clients, o.profileDir)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	rp.Ingest = ing
	rp.DiskAfterIngest = storeSize(storeDir)
	logf("ingest done in %v: %.0f profiles/s, server CPU %.2f cores, VmHWM %s, disk %s",
		ing.Wall.Round(time.Millisecond), float64(ing.Profiles)/ing.Wall.Seconds(), ing.ServerCPU.Seconds()/ing.Wall.Seconds(),
		fmtBytes(ing.PeakRSS), fmtBytes(rp.DiskAfterIngest.Total()))

	// Wait for rollups and compaction.
	st, err := settle(ctx, srv, storeDir, o.settle, o.settleTimeout)
	if err != nil {
		return err
	}
	rp.Settle = st

	// Queries.
	want := expectations{apiCPU: ing.ExpectedAPICPU, apiNodes: f.nodesOf(0)}
	for _, q := range queries(start, end, want) {
		var prof chan error
		if o.profileDir != "" && q.Name == "merge: flamegraph" {
			prof = make(chan error, 1)
			go func() {
				prof <- srv.cpuProfile(ctx, 10, filepath.Join(o.profileDir, "server-merge.cpu.pb.gz"))
			}()
		}
		qr, err := runQuery(ctx, srv.base, q, o.reps)
		if err != nil {
			return err
		}
		if prof != nil {
			if err := <-prof; err != nil {
				logf("server CPU profile during merges: %v", err)
			}
		}
		logf("query %s: first %v, p50 %v, p99 %v: %s", q.Name, qr.First.Round(time.Millisecond),
			qr.P50.Round(time.Millisecond), qr.P99.Round(time.Millisecond), qr.Summary)
		rp.Queries = append(rp.Queries, qr)
	}
	rp.PeakRSSAll = statusBytes(srv.pid, "VmHWM")
	if fams, err := srv.metrics(ctx); err == nil {
		rp.ServerSeries = metricValue(fams, "flightrec_store_series")
		rp.ServerStoredProfiles = metricValue(fams, "flightrec_store_profiles")
	}

	// Stop the server: a clean exit flushes the store.
	stopped = true
	if rp.StopTime, err = srv.stop(2 * time.Minute); err != nil {
		return fmt.Errorf("stop server: %w\n%s", err, srv.logTail(20))
	}
	rp.DiskAfterStop = storeSize(storeDir)
	rp.ServerErrors = countErrors(srv.logPath)
	if o.breakdown {
		b, err := storageBreakdown(ctx, filepath.Join(storeDir, "flightrec.duckdb"))
		if err != nil {
			logf("storage breakdown: %v", err)
		}
		rp.Breakdown = b
	}

	var buf bytes.Buffer
	rp.write(&buf)
	os.Stdout.Write(buf.Bytes())
	if o.out != "" {
		if err := os.WriteFile(o.out, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// settleResult is the store after maintenance caught up.
type settleResult struct {
	Wait      time.Duration
	Disk      diskSize
	Metric    float64 // flightrec_store_disk_bytes
	ServerCPU time.Duration
	TimedOut  bool
}

// settle waits until the store's files have not changed and the server has
// been (almost) idle for window, then until flightrec_store_disk_bytes
// (refreshed every 30 s) reports that size.
func settle(ctx context.Context, srv *serverProc, dir string, window, timeout time.Duration) (*settleResult, error) {
	t0, cpu0 := time.Now(), srv.cpu()
	res := &settleResult{}
	logf("waiting for maintenance (rollups, compaction): size still and server idle for %v", window)
	last, prevCPU := storeSize(dir), srv.cpu()
	still, lastLog := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
		if !srv.alive() {
			return nil, fmt.Errorf("server exited during maintenance:\n%s", srv.logTail(20))
		}
		// Still: same size, and under 5% of a core over the last second.
		cur, cpu := storeSize(dir), srv.cpu()
		if cur != last || cpu-prevCPU > 50*time.Millisecond {
			still = time.Now()
		}
		last, prevCPU = cur, cpu
		if time.Since(still) >= window {
			break
		}
		if time.Since(t0) > timeout {
			res.TimedOut = true
			logf("maintenance did not settle within %v", timeout)
			break
		}
		if time.Since(lastLog) >= 30*time.Second {
			lastLog = time.Now()
			logf("settling: disk %s (db %s, wal %s), server CPU %.2f cores since ingest", fmtBytes(cur.Total()), fmtBytes(cur.DB),
				fmtBytes(cur.WAL), (cpu-cpu0).Seconds()/time.Since(t0).Seconds())
		}
	}
	res.Disk = last
	// The gauge is refreshed every 30 s.
	for deadline := time.Now().Add(40 * time.Second); ; {
		fams, err := srv.metrics(ctx)
		if err != nil {
			return nil, err
		}
		res.Metric = metricValue(fams, "flightrec_store_disk_bytes")
		if int64(res.Metric) == res.Disk.Total() || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	res.Wait, res.ServerCPU = time.Since(t0), srv.cpu()-cpu0
	logf("settled after %v: disk %s (db %s, wal %s), flightrec_store_disk_bytes %s", res.Wait.Round(time.Second),
		fmtBytes(res.Disk.Total()), fmtBytes(res.Disk.DB), fmtBytes(res.Disk.WAL), fmtBytes(int64(res.Metric)))
	return res, nil
}

// countErrors counts ERROR lines in the server's log.
func countErrors(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte("level=ERROR"))
}

func newRand(seed uint64, a, b uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed^a*0x9e3779b97f4a7c15, b+1))
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$`\\{}*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
