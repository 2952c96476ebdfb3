package symbolize

import (
	"container/list"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flightrec/flightrec/agent/procinfo"
	"github.com/flightrec/flightrec/agent/symbolize/kallsyms"
)

// Options bound the symbolizer's caches.
type Options struct {
	// MaxObjects bounds open objects not used by any tracked process; those
	// in use stay open until their processes are released.
	MaxObjects int
	// CacheDir keeps the kernel's symbols across restarts within a boot
	// (see kallsyms.LoadCached); "" reads /proc/kallsyms every start.
	CacheDir string
}

// Symbolizer resolves addresses of any process and of the kernel. It is
// safe for concurrent use.
type Symbolizer struct {
	opts Options
	log  *slog.Logger
	m    metrics

	mu     sync.Mutex
	byFile map[fileKey]*Object // what a mapping's device and inode point to
	byID   map[string]*Object  // one object per build ID, across containers
	idle   *list.List          // objects with no references, least recently released first
	idleAt map[*Object]*list.Element

	kernelOnce sync.Once
	kernel     *kallsyms.Table
	kernelErr  error
	vdsoOnce   sync.Once
	vdso       *Object
}

type fileKey struct{ dev, inode uint64 }

// New returns a symbolizer.
func New(opts Options, log *slog.Logger, reg prometheus.Registerer) *Symbolizer {
	if opts.MaxObjects <= 0 {
		opts.MaxObjects = 64
	}
	return &Symbolizer{
		opts:   opts,
		log:    log,
		m:      newMetrics(reg),
		byFile: map[fileKey]*Object{},
		byID:   map[string]*Object{},
		idle:   list.New(),
		idleAt: map[*Object]*list.Element{},
	}
}

// Space opens the objects behind p's executable mappings now, while the
// process is alive: a process that lives 200 ms is gone by report time, but
// its objects stay open until the Space is released.
func (s *Symbolizer) Space(p *procinfo.Process) *Space {
	sp := &Space{s: s, proc: p, objs: make([]*Object, len(p.Mappings))}
	for i := range p.Mappings {
		m := &p.Mappings[i]
		switch {
		case m.Path == "[vdso]":
			sp.objs[i] = s.vdsoObject()
		case m.FileBacked():
			sp.objs[i] = s.acquire(p, m)
		}
	}
	return sp
}

func (s *Symbolizer) acquire(p *procinfo.Process, m *procinfo.Mapping) *Object {
	key := fileKey{m.Dev, m.Inode}
	s.mu.Lock()
	if o, ok := s.byFile[key]; ok {
		s.ref(o)
		s.mu.Unlock()
		s.m.objectHits.Inc()
		return o
	}
	s.mu.Unlock()
	s.m.objectMisses.Inc()

	o, err := openObject(p.MapFile(m), m.Path)
	if err != nil {
		// map_files needs CAP_SYS_ADMIN; the path through the process's
		// root works without it for files that still exist.
		o, err = openObject(p.Root()+m.Path, m.Path)
	}
	if err != nil {
		s.m.objectErrors.Inc()
		s.log.Debug("cannot open mapped object", "pid", p.PID, "path", m.Path, "err", err)
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if same, ok := s.byID[o.BuildID]; ok && o.BuildID != "" {
		// The same build in another container or path: share it.
		o.close()
		o = same
	} else if raced, ok := s.byFile[key]; ok {
		o.close()
		o = raced
	} else if o.BuildID != "" {
		s.byID[o.BuildID] = o
	}
	s.byFile[key] = o
	s.ref(o)
	return o
}

// ref takes a reference; s.mu is held.
func (s *Symbolizer) ref(o *Object) {
	if e, ok := s.idleAt[o]; ok {
		s.idle.Remove(e)
		delete(s.idleAt, o)
	}
	o.refs++
}

// release drops a reference; unreferenced objects stay cached until the idle
// list overflows, so a process started again reuses them.
func (s *Symbolizer) release(o *Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o.refs--
	if o.refs > 0 || o == s.vdso {
		return
	}
	s.idleAt[o] = s.idle.PushBack(o)
	for s.idle.Len() > s.opts.MaxObjects {
		old := s.idle.Remove(s.idle.Front()).(*Object)
		delete(s.idleAt, old)
		s.forget(old)
		old.close()
		s.m.objectEvictions.Inc()
	}
	s.m.objectsOpen.Set(float64(len(s.byID) + s.idle.Len()))
}

func (s *Symbolizer) forget(o *Object) {
	for k, v := range s.byFile {
		if v == o {
			delete(s.byFile, k)
		}
	}
	if s.byID[o.BuildID] == o {
		delete(s.byID, o.BuildID)
	}
}

// Trim drops the pages of every open object from this process's memory
// (see Object.trim); the agent calls it after each report.
func (s *Symbolizer) Trim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[*Object]bool{}
	for _, o := range s.byFile {
		if !seen[o] {
			seen[o] = true
			o.trim()
		}
	}
}

// Kernel resolves a kernel address through /proc/kallsyms, loaded on first
// use. call says the address is a return address.
func (s *Symbolizer) Kernel(addr uint64, call bool) Location {
	s.kernelOnce.Do(func() {
		s.kernel, s.kernelErr = kallsyms.LoadCached(s.opts.CacheDir)
		if s.kernelErr != nil {
			s.log.Warn("kernel frames stay unsymbolized", "err", s.kernelErr)
		}
	})
	loc := Location{Mapping: &Mapping{File: "[kernel.kallsyms]", Symbolized: s.kernel != nil}}
	if s.kernel == nil {
		return loc
	}
	if call {
		addr--
	}
	if name, module, ok := s.kernel.Lookup(addr); ok {
		if module != "" {
			name += " [" + module + "]"
		}
		loc.Frames = []Frame{{Function: name}}
		s.m.frames.WithLabelValues("kernel", "ok").Inc()
	} else {
		s.m.frames.WithLabelValues("kernel", "unknown").Inc()
	}
	return loc
}

// vdsoObject parses the agent's own vDSO: the kernel maps the same image
// into every process.
func (s *Symbolizer) vdsoObject() *Object {
	s.vdsoOnce.Do(func() {
		img, err := ownVDSO()
		if err == nil {
			s.vdso, err = newObject("[vdso]", img, nil)
		}
		if err != nil {
			s.log.Debug("vDSO frames stay unsymbolized", "err", err)
		}
	})
	return s.vdso
}

func ownVDSO() ([]byte, error) {
	p, err := procinfo.Reader{}.Read(uint32(os.Getpid()))
	if err != nil {
		return nil, err
	}
	for _, m := range p.Mappings {
		if m.Path == "[vdso]" {
			return readOwnMemory(m.Start, m.End-m.Start)
		}
	}
	return nil, fmt.Errorf("no [vdso] mapping in this process")
}

func readOwnMemory(addr, n uint64) ([]byte, error) {
	f, err := os.Open("/proc/self/mem")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, int64(addr)); err != nil {
		return nil, fmt.Errorf("read own vDSO: %w", err)
	}
	return buf, nil
}

type metrics struct {
	objectHits, objectMisses, objectErrors, objectEvictions prometheus.Counter
	objectsOpen                                             prometheus.Gauge
	frames                                                  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		objectHits:      prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_symbolize_cache_hits_total", Help: "Mapped files found already open in the object cache."}),
		objectMisses:    prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_symbolize_cache_misses_total", Help: "Mapped files that had to be opened."}),
		objectErrors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_symbolize_open_errors_total", Help: "Mapped files that could not be opened or parsed."}),
		objectEvictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "flightrec_agent_symbolize_cache_evictions_total", Help: "Unused objects closed to keep the cache bounded."}),
		objectsOpen:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "flightrec_agent_symbolize_objects", Help: "Objects held open."}),
		frames:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flightrec_agent_symbolize_addresses_total", Help: "Addresses resolved, by space and result."}, []string{"space", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.objectHits, m.objectMisses, m.objectErrors, m.objectEvictions, m.objectsOpen, m.frames)
	}
	return m
}
