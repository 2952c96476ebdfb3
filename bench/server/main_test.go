package main

import (
	"bytes"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/zstd"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
)

func testFleet(t *testing.T, nodes, variants int) (*universe, *fleet) {
	t.Helper()
	r := newRand(1, 1, 0)
	u := newUniverse(r, 800, 2000)
	f := newFleet(r, nodes, newServices(r, u))
	buildVariants(f, u, variants, 1)
	return u, f
}

func TestUniverse(t *testing.T) {
	u, f := testFleet(t, 40, 2)
	if len(u.stacks) < 1900 {
		t.Errorf("%d stacks, want about 2000", len(u.stacks))
	}
	for i, st := range u.stacks {
		if len(st) < minDepth || len(st) > maxDepth {
			t.Fatalf("stack %d has depth %d", i, len(st))
		}
		if root := u.locs[st[len(st)-1]].fn; root != 0 {
			t.Fatalf("stack %d starts in %s", i, u.funcs[root].name)
		}
	}
	if n := u.prefixNodes(); n >= len(u.stacks)*30 {
		t.Errorf("%d prefix nodes for %d stacks: stacks share too little", n, len(u.stacks))
	}
	if len(f.groups) != 4 {
		t.Errorf("%d node groups, want 4 (api, api+db, api+db+worker, api+worker)", len(f.groups))
	}
}

// A request body must decode, with pprof and with the server's own
// converter, to one profile per process with the node's labels and time.
func TestPayloadDecodes(t *testing.T) {
	_, f := testFleet(t, 40, 3)
	when := time.Date(2026, 1, 2, 3, 4, 50, 0, time.UTC)
	for node := range f.nodes {
		ni := &f.nodeInfo[node]
		g := f.groups[ni.group]
		v := g.variants[(7+ni.offset)%len(g.variants)]
		dyn, _ := dynamicFrame(nil, nil, f, node, when.UnixNano())
		body := append(slices.Clone(dyn), v.static...)

		plain, err := unzstd(body)
		if err != nil {
			t.Fatalf("%s: zstd: %v", ni.name, err)
		}
		p, err := profile.Parse(bytes.NewReader(plain))
		if err != nil {
			t.Fatalf("%s: pprof: %v", ni.name, err)
		}
		if p.TimeNanos != when.UnixNano() || p.DurationNanos != intervalNS || p.Period != periodNS {
			t.Errorf("%s: time %d duration %d period %d", ni.name, p.TimeNanos, p.DurationNanos, p.Period)
		}
		var cpu int64
		for _, s := range p.Sample {
			if s.Label["node"][0] != ni.name {
				t.Fatalf("%s: sample of node %v", ni.name, s.Label["node"])
			}
			if s.Value[1] != s.Value[0]*periodNS {
				t.Fatalf("values %v", s.Value)
			}
			cpu += s.Value[1]
		}
		var want int64
		for _, c := range v.cpu {
			want += c
		}
		if cpu != want {
			t.Errorf("%s: cpu %d, want %d", ni.name, cpu, want)
		}

		raw, err := pprofconv.Inflate(body, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		pp, err := pprofconv.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := pprofconv.Convert(pp, pprofconv.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(g.services) {
			t.Fatalf("%s: %d profiles, want %d", ni.name, len(out), len(g.services))
		}
		for slot, si := range g.services {
			s := f.services[si]
			found := false
			for _, mp := range out {
				if mp.Labels.Get("service") != s.name {
					continue
				}
				found = true
				ver := s.versions[ni.version[slot]]
				if mp.Type.Name != "cpu" || mp.Labels.Get("node") != ni.name || mp.Labels.Get("pid") != strconv.Itoa(ni.pids[slot]) ||
					mp.Labels.Get("version") != ver.name || mp.Labels.Get("build_id") != ver.buildID || mp.Labels.Get("exe") != s.exe {
					t.Errorf("%s: profile %s %v", ni.name, mp.Type.Name, mp.Labels)
				}
				if len(mp.Stacks.Stacks) != v.stacks[slot] || mp.Stacks.Total()*mp.Scale != v.cpu[slot] {
					t.Errorf("%s %s: %d stacks, total %d; want %d, %d", ni.name, s.name, len(mp.Stacks.Stacks), mp.Stacks.Total()*mp.Scale, v.stacks[slot], v.cpu[slot])
				}
				if !mp.Time.Equal(when) {
					t.Errorf("time %v", mp.Time)
				}
				// Profiles of a request share a frame table: look at one of this one's.
				if leaf := mp.Stacks.Frames[mp.Stacks.Stacks[0][0]]; leaf.BuildID != ver.buildID {
					t.Errorf("frame build ID %q, want %q", leaf.BuildID, ver.buildID)
				}
			}
			if !found {
				t.Errorf("%s: no profile for %s", ni.name, s.name)
			}
		}
	}
}

// TestRawZstd checks raw frames of every size-field width and of more
// than one block, alone and followed by a compressed frame (a request).
func TestRawZstd(t *testing.T) {
	next := newEncoder().EncodeAll([]byte("static"), nil)
	for _, n := range []int{0, 1, 255, 256, 65535 + 256, 65536 + 256, 300 << 10} {
		data := bytes.Repeat([]byte("flightrec"), n/9+1)[:n]
		got, err := unzstd(rawZstd(nil, data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: round trip: %v", n, err)
		}
		got, err = unzstd(append(rawZstd(nil, data), next...))
		if err != nil || !bytes.Equal(got, append(data, "static"...)) {
			t.Fatalf("%d bytes and a frame: round trip: %v", n, err)
		}
	}
}

func unzstd(b []byte) ([]byte, error) {
	zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return zr.DecodeAll(b, nil)
}

func TestPercentile(t *testing.T) {
	var xs []time.Duration
	for i := 1; i <= 20; i++ {
		xs = append(xs, time.Duration(i))
	}
	if p := percentile(xs, 0.5); p != 10 {
		t.Errorf("p50 %d", p)
	}
	if p := percentile(xs, 0.99); p != 20 {
		t.Errorf("p99 %d", p)
	}
}
