// Package snapshots keeps the flight recorder's snapshots (docs/snapshot.md)
// on disk and serves them: listing, download, timeline, pprof and comparison.
package snapshots

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/wire/snapshot"
)

// Summary describes a stored snapshot: what listings show.
type Summary struct {
	ID         string            `json:"id"`
	Node       string            `json:"node"`
	Labels     map[string]string `json:"labels,omitempty"` // node-level labels
	Trigger    snapshot.Trigger  `json:"trigger"`
	StartNS    int64             `json:"start_ns"`
	EndNS      int64             `json:"end_ns"`
	Processes  int               `json:"processes"`
	Size       int64             `json:"size"`        // bytes stored, gzipped
	ReceivedNS int64             `json:"received_ns"` // when the server stored it
}

// Meta is an index record: the summary plus the distinct label sets of the
// snapshot's processes, which selectors are matched against.
type Meta struct {
	Summary
	LabelSets []map[string]string `json:"label_sets,omitempty"`
}

// maxLabelSets bounds the label sets kept per snapshot: processes of one
// service share theirs, so more than this is a node of odd processes.
const maxLabelSets = 1000

// ErrNotFound is returned for an id the store does not hold.
var ErrNotFound = errors.New("no such snapshot")

// Options configure a Store. Zero values mean the defaults given.
type Options struct {
	Retention time.Duration    // 0 keeps everything
	Limits    snapshot.Limits  // for reading blobs back; zero: snapshot.DefaultLimits
	Now       func() time.Time // nil: time.Now
	Logger    *slog.Logger     // nil: discard
}

// Store keeps snapshots in a directory: one blob per snapshot,
// <id>.json.gz, exactly as uploaded (gzipped if it came plain), and an
// append-only index (index.jsonl) of their metadata. A blob is durable
// before its index record is written, and the record before the upload is
// acknowledged; Open reconciles the two after a crash.
type Store struct {
	dir  string
	opts Options

	writeMu sync.Mutex // serializes puts and deletions: index appends and rewrites

	mu        sync.RWMutex
	byID      map[string]*Meta
	bytes     int64
	lastSweep time.Time
}

const (
	indexName  = "index.jsonl"
	blobSuffix = ".json.gz"
	tmpSuffix  = ".tmp"
	// sweepEvery is how often retention runs, on the next call that comes.
	sweepEvery = 10 * time.Minute
)

// Open opens (creating) the store in dir, dropping index records whose
// blob is missing, indexing blobs that have no record, removing temporary
// files of interrupted writes and applying retention.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Limits == (snapshot.Limits{}) {
		opts.Limits = snapshot.DefaultLimits
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create snapshot directory: %w", err)
	}
	s := &Store{dir: dir, opts: opts, byID: map[string]*Meta{}}
	if err := s.recover(); err != nil {
		return nil, fmt.Errorf("open snapshots in %s: %w", dir, err)
	}
	s.maybeSweep()
	return s, nil
}

// recover loads the index and reconciles it with the blobs on disk.
func (s *Store) recover() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	metas, clean, err := readIndex(filepath.Join(s.dir, indexName))
	if err != nil {
		return err
	}
	blobs := map[string]os.DirEntry{}
	for _, e := range entries {
		switch name := e.Name(); {
		case strings.HasSuffix(name, tmpSuffix): // a write that never completed
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				return fmt.Errorf("remove temporary file: %w", err)
			}
		case strings.HasSuffix(name, blobSuffix):
			blobs[strings.TrimSuffix(name, blobSuffix)] = e
		}
	}
	for _, m := range metas {
		if _, ok := blobs[m.ID]; !ok {
			s.opts.Logger.Warn("snapshot index: dropping a record whose blob is gone", "id", m.ID)
			clean = false
			continue
		}
		s.add(m)
	}
	for id, e := range blobs {
		if s.byID[id] == nil {
			clean = false
			s.reindex(id, e)
		}
	}
	if clean {
		return nil
	}
	return s.rewriteIndex()
}

// reindex adds a blob that has no index record: stored, but the crash came
// before its record, so its upload was never acknowledged and may come again.
func (s *Store) reindex(id string, e os.DirEntry) {
	path := s.blobPath(id)
	snap, size, err := s.load(path)
	if err == nil && snap.ID != id {
		err = fmt.Errorf("holds snapshot %q", snap.ID)
	}
	if err != nil {
		s.opts.Logger.Warn("snapshot store: removing an unreadable blob", "file", path, "err", err)
		os.Remove(path)
		return
	}
	received := s.opts.Now()
	if info, err := e.Info(); err == nil {
		received = info.ModTime()
	}
	s.add(metaOf(snap, size, received))
	s.opts.Logger.Info("snapshot store: indexed a blob that had no record", "id", id)
}

func (s *Store) add(m *Meta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[m.ID] = m
	s.bytes += m.Size
}

func (s *Store) blobPath(id string) string { return filepath.Join(s.dir, id+blobSuffix) }

// Put stores snap, whose encoding as uploaded is body (gzipped or plain
// JSON), and returns its summary; created is false when a snapshot of that
// id was already stored, which is then kept as it is.
func (s *Store) Put(body []byte, snap *snapshot.Snapshot) (sum Summary, created bool, err error) {
	s.maybeSweep()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if m, ok := s.Get(snap.ID); ok {
		return m.Summary, false, nil
	}
	blob, err := gzipped(body)
	if err != nil {
		return Summary{}, false, err
	}
	path := s.blobPath(snap.ID)
	if err := writeFileAtomic(path, blob); err != nil {
		return Summary{}, false, fmt.Errorf("store snapshot %s: %w", snap.ID, err)
	}
	m := metaOf(snap, int64(len(blob)), s.opts.Now())
	if err := appendIndex(filepath.Join(s.dir, indexName), m); err != nil {
		// Unacknowledged: leave nothing behind for Open to resurrect.
		os.Remove(path)
		return Summary{}, false, fmt.Errorf("store snapshot %s: %w", snap.ID, err)
	}
	s.add(m)
	return m.Summary, true, nil
}

// gzipped returns body gzipped: as it is if it already is.
func gzipped(body []byte) ([]byte, error) {
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		return body, nil
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("gzip snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// metaOf builds the index record of snap.
func metaOf(snap *snapshot.Snapshot, size int64, received time.Time) *Meta {
	m := &Meta{Summary: Summary{
		ID: snap.ID, Node: snap.Node, Labels: snap.Labels, Trigger: snap.Trigger,
		StartNS: snap.StartNS, EndNS: snap.EndNS, Processes: len(snap.Processes),
		Size: size, ReceivedNS: received.UnixNano(),
	}}
	seen := map[uint64]bool{}
	for _, p := range snap.Processes {
		if len(m.LabelSets) == maxLabelSets {
			break
		}
		if h := labels.FromMap(p.Labels).Hash(); !seen[h] {
			seen[h] = true
			m.LabelSets = append(m.LabelSets, p.Labels)
		}
	}
	return m
}

// Get returns the metadata of snapshot id.
func (s *Store) Get(id string) (*Meta, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.byID[id]
	return m, ok
}

// Blob returns snapshot id as stored: gzipped JSON.
func (s *Store) Blob(id string) ([]byte, error) {
	s.maybeSweep()
	if _, ok := s.Get(id); !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	b, err := os.ReadFile(s.blobPath(id))
	if errors.Is(err, os.ErrNotExist) { // deleted by retention meanwhile
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", id, err)
	}
	return b, nil
}

// Load returns snapshot id decoded.
func (s *Store) Load(id string) (*snapshot.Snapshot, error) {
	b, err := s.Blob(id)
	if err != nil {
		return nil, err
	}
	snap, err := snapshot.Decode(b, s.opts.Limits)
	if err != nil {
		return nil, fmt.Errorf("decode stored snapshot %s: %w", id, err)
	}
	return snap, nil
}

// load decodes the blob at path, returning it and its size.
func (s *Store) load(path string) (*snapshot.Snapshot, int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	snap, err := snapshot.Decode(b, s.opts.Limits)
	return snap, int64(len(b)), err
}

// Filter selects snapshots in List.
type Filter struct {
	Matchers []*labels.Matcher // against process, node and trigger labels
	From, To time.Time         // trigger time in [From, To); zero: unbounded
	Limit    int               // 0: all
}

// List returns the snapshots f selects, newest trigger first, and how many
// matched before the limit.
func (s *Store) List(f Filter) ([]Summary, int) {
	s.maybeSweep()
	s.mu.RLock()
	var out []Summary
	for _, m := range s.byID {
		if inRange(m.Trigger.TimeNS, f.From, f.To) && m.Matches(f.Matchers) {
			out = append(out, m.Summary)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Summary) int {
		return cmp.Or(cmp.Compare(b.Trigger.TimeNS, a.Trigger.TimeNS), cmp.Compare(a.ID, b.ID))
	})
	n := len(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, n
}

func inRange(ns int64, from, to time.Time) bool {
	return (from.IsZero() || ns >= from.UnixNano()) && (to.IsZero() || ns < to.UnixNano())
}

// Stats returns how many snapshots are stored and their bytes.
func (s *Store) Stats() (count int, bytes int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byID), s.bytes
}

// maybeSweep applies retention if it has not run for sweepEvery. It runs on
// the store's own calls rather than a timer so that the store needs no
// goroutine to stop; a store nobody calls does not grow either.
func (s *Store) maybeSweep() {
	if s.opts.Retention <= 0 {
		return
	}
	now := s.opts.Now()
	s.mu.Lock()
	due := now.Sub(s.lastSweep) >= sweepEvery
	if due {
		s.lastSweep = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	if n, err := s.DeleteBefore(now.Add(-s.opts.Retention)); err != nil {
		s.opts.Logger.Error("snapshot retention failed", "err", err)
	} else if n > 0 {
		s.opts.Logger.Info("snapshot retention: deleted old snapshots", "count", n)
	}
}

// DeleteBefore deletes the snapshots received before t and returns how
// many. Blobs go first, then the index is rewritten: a crash in between
// leaves records without blobs, which Open drops, never blobs without
// records, which it would bring back.
func (s *Store) DeleteBefore(t time.Time) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.RLock()
	var old []*Meta
	for _, m := range s.byID {
		if m.ReceivedNS < t.UnixNano() {
			old = append(old, m)
		}
	}
	s.mu.RUnlock()
	if len(old) == 0 {
		return 0, nil
	}
	var errs []error
	for _, m := range old {
		if err := os.Remove(s.blobPath(m.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		delete(s.byID, m.ID)
		s.bytes -= m.Size
		s.mu.Unlock()
	}
	if err := s.rewriteIndex(); err != nil {
		errs = append(errs, err)
	}
	return len(old) - len(errs), errors.Join(errs...)
}

// rewriteIndex replaces the index with the records in memory.
func (s *Store) rewriteIndex() error {
	s.mu.RLock()
	metas := make([]*Meta, 0, len(s.byID))
	for _, m := range s.byID {
		metas = append(metas, m)
	}
	s.mu.RUnlock()
	slices.SortFunc(metas, func(a, b *Meta) int { return cmp.Compare(a.ReceivedNS, b.ReceivedNS) })
	return writeIndex(filepath.Join(s.dir, indexName), metas)
}
