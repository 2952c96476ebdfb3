// Package pproftest generates realistic agent profiles for the ingest
// packages' tests and benchmarks: what one node's flightrec-agent sends
// every 10 s (docs/wire.md). It is imported only by tests.
package pproftest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/zstd"
)

// Config shapes a generated profile. Zero fields take the defaults of
// Agent's benchmark payload.
type Config struct {
	Processes int   // default 3
	Stacks    int   // distinct stacks per process; default 300
	Depth     int   // frames per stack; default 34
	Functions int   // functions to draw from; default 3000
	Seed      int64 // default 1
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Processes, 3)
	def(&c.Stacks, 300)
	def(&c.Depth, 34)
	def(&c.Functions, 3000)
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Period is the agent's 19 Hz sampling period.
const Period = 52631578

// Agent generates an agent profile: per process a mapping of its
// executable, stacks that share prefixes (walks down a call tree), about
// one frame in ten inlined (two lines in a location) and one location in
// fifty unsymbolized, and the seven process labels on every sample.
func Agent(c Config) *profile.Profile {
	c = c.withDefaults()
	r := rand.New(rand.NewPCG(uint64(c.Seed), 42))
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        Period,
		TimeNanos:     time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano(),
		DurationNanos: int64(10 * time.Second),
	}
	for i := range c.Functions {
		pkg := fmt.Sprintf("acme/shop/pkg%02d", i%97)
		name := fmt.Sprintf("%s.(*T%d).M%d", pkg, i%31, i)
		p.Function = append(p.Function, &profile.Function{
			Name:       name,
			SystemName: name,
			Filename:   fmt.Sprintf("/src/%s/f%d.go", pkg, i%13),
			StartLine:  int64(10 + i%500),
		})
	}
	for proc := range c.Processes {
		addProcess(r, p, c, proc)
	}
	dropUnused(p)
	return p
}

// dropUnused keeps the functions that some location uses, numbered from 1.
func dropUnused(p *profile.Profile) {
	used := map[*profile.Function]bool{}
	for _, l := range p.Location {
		for _, ln := range l.Line {
			used[ln.Function] = true
		}
	}
	kept := p.Function[:0]
	for _, f := range p.Function {
		if used[f] {
			f.ID = uint64(len(kept) + 1)
			kept = append(kept, f)
		}
	}
	p.Function = kept
}

func addProcess(r *rand.Rand, p *profile.Profile, c Config, proc int) {
	exe := fmt.Sprintf("/usr/bin/service%d", proc)
	build := fmt.Sprintf("%040x", r.Uint64())
	m := &profile.Mapping{ID: uint64(proc + 1), Start: 0x400000, Limit: 0x4400000, File: exe, BuildID: build,
		HasFunctions: true, HasFilenames: true, HasLineNumbers: true, HasInlineFrames: true}
	p.Mapping = append(p.Mapping, m)
	type site struct{ fn, line int }
	locs := map[site]*profile.Location{}
	loc := func(s site) *profile.Location {
		if l, ok := locs[s]; ok {
			return l
		}
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: m, Address: 0x401000 + uint64(s.fn)*0x800 + uint64(s.line)%0x800}
		switch x := r.IntN(50); {
		case x == 0: // unsymbolized
		case x < 6: // an inlined call, then its caller
			callee := p.Function[r.IntN(len(p.Function))]
			l.Line = []profile.Line{{Function: callee, Line: callee.StartLine + 3}, {Function: p.Function[s.fn], Line: int64(s.line)}}
		default:
			l.Line = []profile.Line{{Function: p.Function[s.fn], Line: int64(s.line)}}
		}
		p.Location = append(p.Location, l)
		locs[s] = l
		return l
	}
	labels := map[string][]string{
		"node": {"node-0017"}, "pid": {strconv.Itoa(1000 + proc)}, "comm": {fmt.Sprintf("service%d", proc)},
		"exe": {exe}, "build_id": {build}, "service": {fmt.Sprintf("service%d", proc)}, "version": {"1.2." + strconv.Itoa(proc)},
	}
	// Stacks walk down a shared tree: each starts as a random earlier
	// stack's prefix (root side) and continues with 1 to 6 fresh frames.
	var roots [][]site
	for range c.Stacks {
		var path []site
		if len(roots) > 0 {
			prev := roots[r.IntN(len(roots))]
			path = append(path, prev[:max(0, len(prev)-1-r.IntN(6))]...)
		}
		for len(path) < c.Depth {
			fn := r.IntN(len(p.Function))
			path = append(path, site{fn, int(p.Function[fn].StartLine) + r.IntN(40)})
		}
		roots = append(roots, path)
		s := &profile.Sample{Label: labels}
		for i := len(path) - 1; i >= 0; i-- { // leaf first
			s.Location = append(s.Location, loc(path[i]))
		}
		n := int64(1 + r.IntN(4))
		s.Value = []int64{n, n * Period}
		p.Sample = append(p.Sample, s)
	}
}

// Encode returns p gzip-compressed, as pprof writes it (and as the agent
// sent it before zstd).
func Encode(p *profile.Profile) []byte {
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// EncodeUncompressed returns p's protobuf.
func EncodeUncompressed(p *profile.Profile) []byte {
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// EncodeZstd returns p as the agent sends it (docs/wire.md): compressed
// with zstd at the fastest level.
func EncodeZstd(p *profile.Profile) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		panic(err)
	}
	defer enc.Close()
	return enc.EncodeAll(EncodeUncompressed(p), nil)
}
