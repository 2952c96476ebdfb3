package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serverProc is the flightrec server under test, a child process.
type serverProc struct {
	cmd     *exec.Cmd
	pid     int
	base    string // http://127.0.0.1:PORT
	dataDir string
	logPath string
	logFile *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// startServer runs `flightrec server` on a free loopback port and waits
// until it answers /healthz.
func startServer(ctx context.Context, bin, dataDir, logPath string, extra []string) (*serverProc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"server", "--data", dataDir, "--listen", addr}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// A backstop if the bench dies without running its cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &serverProc{cmd: cmd, pid: cmd.Process.Pid, base: "http://" + addr, dataDir: dataDir,
		logPath: logPath, logFile: lf, done: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.done) }()
	logf("server pid %d: %s %s (log %s)", s.pid, bin, strings.Join(args, " "), logPath)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("server exited at start-up (%v):\n%s", s.waitErr, s.logTail(20))
		case <-ctx.Done():
			s.stop(10 * time.Second)
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(10 * time.Second)
			return nil, fmt.Errorf("server did not answer /healthz within 60 s:\n%s", s.logTail(20))
		}
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// alive reports whether the server is still running.
func (s *serverProc) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM (the server then flushes and closes the store), and
// SIGKILL after timeout. It returns how long the shutdown took and whether
// it was clean.
func (s *serverProc) stop(timeout time.Duration) (time.Duration, error) {
	defer s.logFile.Close()
	start := time.Now()
	if !s.alive() {
		return 0, fmt.Errorf("server had already exited: %v", s.waitErr)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.waitErr != nil {
			return time.Since(start), fmt.Errorf("server exited with %v", s.waitErr)
		}
		return time.Since(start), nil
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return time.Since(start), fmt.Errorf("server did not exit within %v of SIGTERM; killed", timeout)
	}
}

// logTail returns the last n lines of the server's log.
func (s *serverProc) logTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cpu returns utime+stime of the server (all threads).
func (s *serverProc) cpu() time.Duration {
	d, err := statCPU(s.pid)
	if err != nil {
		return 0
	}
	return d
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's utime and stime: 100
// on every Linux architecture.
const clockTicks = 100

func statCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// comm may hold spaces: fields after the last ')' start at 3 (state);
	// utime is field 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat: %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat: %q", b)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed stat: %q", b)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// statusBytes returns a "Key:  N kB" field of /proc/PID/status in bytes.
func statusBytes(pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// diskSize is the store's database file and WAL, as the server counts them.
type diskSize struct{ DB, WAL int64 }

func (d diskSize) Total() int64 { return d.DB + d.WAL }

func storeSize(dir string) diskSize {
	var d diskSize
	if fi, err := os.Stat(filepath.Join(dir, "flightrec.duckdb")); err == nil {
		d.DB = fi.Size()
	}
	if fi, err := os.Stat(filepath.Join(dir, "flightrec.duckdb.wal")); err == nil {
		d.WAL = fi.Size()
	}
	return d
}

// metrics scrapes the server's /metrics.
func (s *serverProc) metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("/metrics: %s: %s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// metricValue sums the samples of family name whose labels include want
// (name=value pairs).
func metricValue(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == want[i] && lp.GetValue() == want[i+1] {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

// cpuProfile saves a Go CPU profile of the server (its /debug/pprof is
// open when it runs without tokens). It covers Go code and the cgo calls
// into DuckDB made from Go threads, not DuckDB's own worker threads.
func (s *serverProc) cpuProfile(ctx context.Context, seconds int, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.base, seconds), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return errors.New("cpu profile: empty")
	}
	return os.WriteFile(path, b, 0o644)
}
