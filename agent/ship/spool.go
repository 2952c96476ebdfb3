package ship

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/wire/snapshot"
)

// SnapshotsPath is where the server receives snapshots (docs/snapshot.md).
const SnapshotsPath = "/api/v1/snapshots"

// SnapshotSpoolConfig says where snapshots wait and where they go.
type SnapshotSpoolConfig struct {
	Server     string        // base URL, e.g. http://flightrec:7070
	Token      string        // bearer token allowed to ingest; "" sends none
	Dir        string        // the spool directory, created if missing
	MaxBytes   int64         // bound on the files in Dir (default 256 MiB)
	MinBackoff time.Duration // first retry delay (default 0.5 s)
	MaxBackoff time.Duration // retry delay cap (default 30 s)
	Timeout    time.Duration // per request (default 60 s: snapshots are large)
}

func (c *SnapshotSpoolConfig) defaults() {
	if c.MaxBytes <= 0 {
		c.MaxBytes = 256 << 20
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
}

// A spooled snapshot is the file <sequence>-<id>.json.gz, the encoded body
// as sent: the zero-padded sequence orders the files across restarts.
// Files being written end in .tmp until renamed into place.
var spoolName = regexp.MustCompile(`^([0-9]{20})-([A-Za-z0-9._-]{1,128})\.json\.gz$`)

const tmpSuffix = ".tmp"

type spoolFile struct {
	seq  uint64
	id   string
	size int64
}

func (f spoolFile) name() string { return fmt.Sprintf("%020d-%s.json.gz", f.seq, f.id) }

// SnapshotSpool persists encoded snapshots in a directory, bounded in
// bytes, and sends them to the server in order, retrying with backoff while
// it is away. The files survive agent restarts.
type SnapshotSpool struct {
	cfg    SnapshotSpoolConfig
	client *http.Client
	log    *slog.Logger
	m      spoolMetrics
	wake   chan struct{}

	mu      sync.Mutex
	files   []spoolFile // by sequence, oldest first
	bytes   int64
	nextSeq uint64
}

// NewSnapshotSpool opens (or creates) the spool directory: it removes the
// temporary files a crash left, and queues the snapshots already there.
func NewSnapshotSpool(cfg SnapshotSpoolConfig, log *slog.Logger, reg prometheus.Registerer) (*SnapshotSpool, error) {
	cfg.defaults()
	if !strings.HasPrefix(cfg.Server, "http://") && !strings.HasPrefix(cfg.Server, "https://") {
		return nil, fmt.Errorf("server URL %q must start with http:// or https://", cfg.Server)
	}
	if cfg.Dir == "" {
		return nil, errors.New("snapshot spool needs a directory")
	}
	cfg.Server = strings.TrimSuffix(cfg.Server, "/")
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot spool: %w", err)
	}
	s := &SnapshotSpool{
		cfg:     cfg,
		client:  &http.Client{Timeout: cfg.Timeout},
		log:     log,
		m:       newSpoolMetrics(reg),
		wake:    make(chan struct{}, 1),
		nextSeq: 1,
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.trim(0)
	s.mu.Unlock()
	if n := s.Pending(); n > 0 {
		s.log.Info("snapshots waiting from an earlier run", "count", n, "dir", cfg.Dir)
	}
	return s, nil
}

// load lists the spooled snapshots and deletes unfinished writes.
func (s *SnapshotSpool) load() error {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("read snapshot spool: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			// A write the agent did not finish: never complete, never sent.
			if err := os.Remove(filepath.Join(s.cfg.Dir, name)); err != nil {
				s.log.Warn("remove unfinished snapshot", "file", name, "err", err)
			}
			continue
		}
		m := spoolName.FindStringSubmatch(name)
		if m == nil || !e.Type().IsRegular() {
			continue // not ours
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		s.files = append(s.files, spoolFile{seq: seq, id: m[2], size: info.Size()})
		s.bytes += info.Size()
		s.nextSeq = max(s.nextSeq, seq+1)
	}
	slices.SortFunc(s.files, func(a, b spoolFile) int { return cmp.Compare(a.seq, b.seq) })
	s.m.spoolBytes.Set(float64(s.bytes))
	return nil
}

// Put encodes snap and writes it to the spool atomically, then wakes the
// sender. When the spool would exceed its bound, the oldest snapshots are
// deleted and counted; the one just put is kept.
func (s *SnapshotSpool) Put(snap *snapshot.Snapshot) error {
	if err := snap.Validate(); err != nil {
		return fmt.Errorf("spool snapshot %q: %w", snap.ID, err)
	}
	var body bytes.Buffer
	if err := snapshot.Encode(&body, snap); err != nil {
		return fmt.Errorf("spool snapshot %s: %w", snap.ID, err)
	}
	if int64(body.Len()) > s.cfg.MaxBytes {
		s.m.dropped.Inc()
		return fmt.Errorf("spool snapshot %s: %d bytes encoded, more than the whole spool (%d)", snap.ID, body.Len(), s.cfg.MaxBytes)
	}
	s.mu.Lock()
	f := spoolFile{seq: s.nextSeq, id: snap.ID, size: int64(body.Len())}
	s.nextSeq++
	s.mu.Unlock()
	if err := writeAtomic(s.cfg.Dir, f.name(), body.Bytes()); err != nil {
		return fmt.Errorf("spool snapshot %s: %w", snap.ID, err)
	}
	s.mu.Lock()
	i, _ := slices.BinarySearchFunc(s.files, f.seq, func(e spoolFile, seq uint64) int { return cmp.Compare(e.seq, seq) })
	s.files = slices.Insert(s.files, i, f)
	s.bytes += f.size
	s.trim(f.seq)
	s.mu.Unlock()
	s.m.spooled.Inc()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// trim deletes the oldest files, except keep, until the spool is within
// its bound. Snapshots are evidence of incidents: the newest matter most.
func (s *SnapshotSpool) trim(keep uint64) {
	for s.bytes > s.cfg.MaxBytes && len(s.files) > 0 {
		i := 0
		if s.files[0].seq == keep {
			if len(s.files) == 1 {
				break
			}
			i = 1
		}
		f := s.files[i]
		s.drop(i)
		s.m.dropped.Inc()
		s.log.Warn("snapshot spool full; deleted the oldest snapshot", "id", f.id, "bytes", f.size, "max_bytes", s.cfg.MaxBytes)
	}
	s.m.spoolBytes.Set(float64(s.bytes))
}

// drop forgets the i-th file and deletes it.
func (s *SnapshotSpool) drop(i int) {
	f := s.files[i]
	s.files = slices.Delete(s.files, i, i+1)
	s.bytes -= f.size
	s.m.spoolBytes.Set(float64(s.bytes))
	if err := os.Remove(filepath.Join(s.cfg.Dir, f.name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove spooled snapshot", "file", f.name(), "err", err)
	}
}

// done forgets f if the spool still has it (Put may have dropped it).
func (s *SnapshotSpool) done(f spoolFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.files, func(e spoolFile) bool { return e.seq == f.seq }); i >= 0 {
		s.drop(i)
	}
}

// Pending is the number of snapshots waiting to be sent.
func (s *SnapshotSpool) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files)
}

func (s *SnapshotSpool) head() (spoolFile, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.files) == 0 {
		return spoolFile{}, false
	}
	return s.files[0], true
}

// Run sends the spooled snapshots, oldest first, until ctx is done. What
// is not sent stays on disk for the next run.
func (s *SnapshotSpool) Run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		f, ok := s.head()
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
				return
			case <-time.After(jitter(backoff)):
			}
		}
		if err := s.send(ctx, f); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = nextBackoff(backoff, s.cfg.MinBackoff, s.cfg.MaxBackoff)
			s.log.Warn("ship snapshot failed, will retry", "id", f.id, "err", err, "retry_in", backoff, "pending", s.Pending())
			continue
		}
		backoff = 0
	}
}

func nextBackoff(d, lo, hi time.Duration) time.Duration {
	if d == 0 {
		return lo
	}
	return min(2*d, hi)
}

// send posts f once. nil means f is settled: acknowledged, rejected (a 4xx
// other than 408/429: the same bytes cannot succeed), or unreadable.
func (s *SnapshotSpool) send(ctx context.Context, f spoolFile) error {
	body, err := os.ReadFile(filepath.Join(s.cfg.Dir, f.name()))
	if errors.Is(err, fs.ErrNotExist) {
		s.done(f) // Put dropped it to make room, and counted it
		return nil
	}
	if err != nil {
		s.log.Error("cannot read spooled snapshot; dropping it", "id", f.id, "err", err)
		s.m.dropped.Inc()
		s.done(f)
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.Server+SnapshotsPath, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("ship snapshot %s: %w", f.id, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", f.id) // the body's id is what the server dedups on
	if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.m.failures.WithLabelValues("network").Inc()
		return fmt.Errorf("ship snapshot %s: %w", f.id, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code/100 == 2:
		s.m.shipped.Inc()
		s.done(f)
		return nil
	case code/100 == 4 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		s.m.rejected.Inc()
		s.log.Error("server rejected snapshot; deleting it", "id", f.id, "status", resp.Status, "message", strings.TrimSpace(string(msg)))
		s.done(f)
		return nil
	default:
		s.m.failures.WithLabelValues("status").Inc()
		return fmt.Errorf("ship snapshot %s: server answered %s: %s", f.id, resp.Status, strings.TrimSpace(string(msg)))
	}
}

// writeAtomic writes data to dir/name so that name, if it exists, is
// complete: a temporary file, synced, renamed, and the directory synced.
func writeAtomic(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "put-*"+tmpSuffix)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type spoolMetrics struct {
	spooled, shipped, rejected, dropped prometheus.Counter
	failures                            *prometheus.CounterVec
	spoolBytes                          prometheus.Gauge
}

func newSpoolMetrics(reg prometheus.Registerer) spoolMetrics {
	m := spoolMetrics{
		spooled:    prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_snapshots_spooled_total", Help: "Snapshots written to the spool."}),
		shipped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_snapshots_shipped_total", Help: "Snapshots the server acknowledged."}),
		rejected:   prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_snapshots_rejected_total", Help: "Snapshots the server refused as invalid (not retried)."}),
		dropped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_snapshots_dropped_total", Help: "Snapshots deleted unsent: the spool was full, or the file unreadable."}),
		failures:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flightrec_agent_snapshot_ship_failures_total", Help: "Failed attempts to ship a snapshot, retried."}, []string{"reason"}),
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flightrec_agent_snapshot_spool_bytes", Help: "Bytes of snapshots waiting in the spool."}),
	}
	if reg != nil {
		reg.MustRegister(m.spooled, m.shipped, m.rejected, m.dropped, m.failures, m.spoolBytes)
	}
	return m
}
