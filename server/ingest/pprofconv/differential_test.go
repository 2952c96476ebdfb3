package pprofconv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/ingest/internal/pproftest"
	"github.com/flightrec/flightrec/server/model"
)

// The protobuf decoder and the converter are held to references by
// differential tests: the decoder to github.com/google/pprof's parser
// (FuzzDecodeMatchesPprof), the converter to the one it replaced,
// reference_test.go (FuzzConvertMatchesReference). Their seeds run with
// go test; fuzz them with
//
//	go test ./server/ingest/pprofconv -run '^$' -fuzz FuzzDecodeMatchesPprof -fuzztime 60s -fuzzminimizetime 1s
//
// (a short minimization: the seeds are kilobytes, and minimizing one for
// the default minute stalls the run).
//
// Deliberate differences, which the fuzzers skip:
//   - numeric labels are checked as pprof checks them, then dropped (the
//     converter ignores them), so the decoder is compared on string labels;
//   - label sets are keyed by their text, length-prefixed; the reference's
//     key joined names and values with 0xff, so two label sets with 0xff
//     bytes (invalid UTF-8) could take each other's series there.

// diffSeeds are profiles of every shape the tests know.
func diffSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	add := func(p *profile.Profile) {
		var buf bytes.Buffer
		if err := p.WriteUncompressed(&buf); err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	add(pproftest.Agent(pproftest.Config{Processes: 2, Stacks: 20, Depth: 8, Functions: 50}))
	add(pproftest.Agent(pproftest.Config{Processes: 1, Stacks: 5, Depth: 3, Functions: 10, Seed: 7}))
	add(agentProfile(52631578))
	b := newBuilder("cpu/nanoseconds")
	b.sample([]string{"a", "main"}, []int64{20}, "tenant", "a", "http.method", "GET")
	b.sample([]string{"b", "main"}, []int64{10}, "http.method", "GET", "tenant", "a")
	b.sample([]string{"a", "main"}, []int64{10}, "tenant", "b", "service", "evil", "__name__", "x", "", "e")
	b.sample([]string{"a", "main"}, []int64{5}, "tenant", "b", "http.method", "GET", "http_method", "POST")
	add(b.p)
	add(newBuilder("contentions/count", "delay/nanoseconds").sample([]string{"a"}, []int64{1, 100}).p)
	add(newBuilder("alloc_objects/count", "inuse_objects/count").sample([]string{"a"}, []int64{300, 0}).sample([]string{"b"}, []int64{500, 0}).p)
	var heap bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&heap, 0); err != nil {
		tb.Fatal(err)
	}
	raw, err := Inflate(heap.Bytes(), 64<<20)
	if err != nil {
		tb.Fatal(err)
	}
	seeds = append(seeds, raw)
	seeds = append(seeds, edgeSeeds(seeds[len(seeds)-3])...)
	files, _ := filepath.Glob("testdata/fuzz/*/*")
	for _, f := range files {
		if data, ok := readCorpusFile(tb, f); ok {
			seeds = append(seeds, data)
		}
	}
	return seeds
}

// edgeSeeds appends to a valid profile what pprof's decoder treats in its
// own way: repeated optional and message fields, unknown fields of every
// wire type, field number 0, a 10-byte varint, string indexes out of range
// where pprof checks them and where it does not.
func edgeSeeds(valid []byte) [][]byte {
	field := func(num int, wire uint64, payload ...byte) []byte {
		b := binary.AppendUvarint(nil, uint64(num)<<3|wire)
		if wire == wireBytes {
			b = binary.AppendUvarint(b, uint64(len(payload)))
		}
		return append(b, payload...)
	}
	vt := func(typ, unit byte) []byte { return []byte{0x08, typ, 0x10, unit} }
	long := []byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f} // 10 bytes, bits past 64
	var out [][]byte
	for _, extra := range [][]byte{
		field(fTimeNanos, wireVarint, 5), // a second time_nanos
		append(field(fPeriodType, wireBytes, vt(99, 99)...), field(fPeriodType, wireBytes, vt(0, 0)...)...), // replaced
		field(fPeriodType, wireBytes, vt(99, 0)...),                                                         // checked
		field(fDropFrames, wireVarint, 99),                                                                  // checked
		append(field(fDocURL, wireVarint, 99), field(fDocURL, wireVarint, 0)...),                            // only the last checked
		field(fComment, wireBytes, 1, 99),                                                                   // packed, checked
		field(100, wireFixed32, 1, 2, 3, 4),                                                                 // unknown fields
		field(100, wireFixed64, 1, 2, 3, 4, 5, 6, 7, 8),
		field(100, wireBytes, 1, 2),
		field(0, wireVarint, 1),                             // field 0
		field(fPeriod, wireFixed64, 1, 2, 3, 4, 5, 6, 7, 8), // wrong wire type
		append(field(fPeriod, wireVarint), long...),
		field(fSample, wireBytes, append([]byte{0x12, 2, 1, 1}, field(3, wireBytes, 0x08, 99, 0x18, 1)...)...),          // numeric label, bad key
		field(fSample, wireBytes, append([]byte{0x12, 2, 1, 1}, field(3, wireBytes, 0x08, 1, 0x18, 1, 0x20, 99)...)...), // bad unit
		field(fSample, wireBytes, append([]byte{0x12, 2, 1, 1}, field(3, wireBytes, 0x08, 1, 0x10, 1, 0x20, 99)...)...), // unit not looked up
		field(fMapping, wireBytes, 0x08, 50, 0x28, 99),                                                                  // bad file
		field(fLocation, wireBytes, 0x08, 60, 0x10, 77),                                                                 // no such mapping: none
		field(fLocation, wireBytes, append([]byte{0x08, 61}, field(4, wireBytes, 0x08, 88)...)...),                      // no such function
		field(fFunction, wireBytes, 0x08, 70, 0x10, 1, 0x28, 0x80, 0x01),                                                // start_line read, not kept
		field(fStringTable, wireVarint, 1),                                                                              // wrong wire type
		{0x1b},                                                                                                          // group
	} {
		out = append(out, append(slices.Clip(valid), extra...))
	}
	return out
}

// readCorpusFile reads a "go test fuzz v1" file of one []byte.
func readCorpusFile(tb testing.TB, name string) ([]byte, bool) {
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	_, lit, _ := strings.Cut(string(b), "\n")
	lit = strings.TrimSpace(lit)
	if !strings.HasPrefix(lit, "[]byte(") || !strings.HasSuffix(lit, ")") || strings.Contains(lit, "\n") {
		return nil, false
	}
	s, err := strconv.Unquote(lit[len("[]byte(") : len(lit)-1])
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

// pprofParse is the reference decoder: pprof's parser and CheckValid.
func pprofParse(data []byte) (p *profile.Profile, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	if p, err = profile.ParseUncompressed(data); err != nil {
		return nil, err
	}
	return p, p.CheckValid()
}

func FuzzDecodeMatchesPprof(f *testing.F) {
	for _, s := range diffSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := pprofParse(data)
		var tb tables
		err := decodeWire(data, &tb)
		if err == nil {
			err = tb.resolve()
		}
		switch {
		case wantErr != nil && err != nil:
			return
		case wantErr != nil:
			t.Fatalf("pprof rejects (%v), the decoder accepts", wantErr)
		case err != nil:
			t.Fatalf("pprof accepts, the decoder rejects: %v", err)
		}
		if got, want := dumpTables(&tb), dumpProfile(want); got != want {
			t.Fatalf("decoded differently:\n got %s\nwant %s", got, want)
		}
	})
}

// dumpProfile renders what the decoder keeps of p: everything but numeric
// labels and fields Convert does not read (limits, flags, columns...).
func dumpProfile(p *profile.Profile) string {
	var b strings.Builder
	for _, st := range p.SampleType {
		fmt.Fprintf(&b, "type %q/%q\n", st.Type, st.Unit)
	}
	fmt.Fprintf(&b, "period %q/%q %d time %d dur %d\n", p.PeriodType.Type, p.PeriodType.Unit, p.Period, p.TimeNanos, p.DurationNanos)
	for _, m := range p.Mapping {
		fmt.Fprintf(&b, "mapping %d start %x offset %x %q %q\n", m.ID, m.Start, m.Offset, m.File, m.BuildID)
	}
	for _, f := range p.Function {
		fmt.Fprintf(&b, "function %d %q %q %q\n", f.ID, f.Name, f.SystemName, f.Filename)
	}
	for _, l := range p.Location {
		var m uint64
		if l.Mapping != nil {
			m = l.Mapping.ID
		}
		fmt.Fprintf(&b, "location %d mapping %d addr %x", l.ID, m, l.Address)
		for _, ln := range l.Line {
			fmt.Fprintf(&b, " %d:%d", ln.Function.ID, ln.Line)
		}
		b.WriteString("\n")
	}
	for _, s := range p.Sample {
		fmt.Fprintf(&b, "sample %v", s.Value)
		for _, l := range s.Location {
			fmt.Fprintf(&b, " %d", l.ID)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range s.Label {
				if !yield(k) {
					return
				}
			}
		})
		for _, k := range keys {
			fmt.Fprintf(&b, " %q=%q", k, s.Label[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// dumpTables renders t as dumpProfile renders the profile pprof decodes.
func dumpTables(t *tables) string {
	var b strings.Builder
	for _, st := range t.sampleTypes {
		fmt.Fprintf(&b, "type %q/%q\n", t.str(st.typ), t.str(st.unit))
	}
	fmt.Fprintf(&b, "period %q/%q %d time %d dur %d\n", t.str(t.periodType.typ), t.str(t.periodType.unit), t.period, t.timeNanos, t.durationNanos)
	for _, m := range t.mappings {
		fmt.Fprintf(&b, "mapping %d start %x offset %x %q %q\n", m.id, m.start, m.offset, t.str(m.file), t.str(m.buildID))
	}
	for _, f := range t.functions {
		fmt.Fprintf(&b, "function %d %q %q %q\n", f.id, t.str(f.name), t.str(f.systemName), t.str(f.filename))
	}
	for _, l := range t.locations {
		var m uint64
		if l.mapping >= 0 {
			m = t.mappings[l.mapping].id
		}
		fmt.Fprintf(&b, "location %d mapping %d addr %x", l.id, m, l.address)
		for _, ln := range t.lines[l.lines.start:l.lines.end] {
			fmt.Fprintf(&b, " %d:%d", t.functions[ln.function].id, ln.line)
		}
		b.WriteString("\n")
	}
	for _, s := range t.samples {
		fmt.Fprintf(&b, "sample %v", t.values[s.values.start:s.values.end])
		for _, li := range t.sampleLocs[s.locs.start:s.locs.end] {
			fmt.Fprintf(&b, " %d", t.locations[li].id)
		}
		m := map[string][]string{}
		for _, l := range t.labels[s.labels.start:s.labels.end] {
			m[t.str(l.key)] = append(m[t.str(l.key)], t.str(l.str))
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(&b, " %q=%q", k, m[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func FuzzConvertMatchesReference(f *testing.F) {
	for _, s := range diffSeeds(f) {
		for opts := range uint8(8) {
			f.Add(s, opts)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, opts uint8) {
		if p, err := Decode(data, 4<<20); err == nil && has0xff(p) {
			t.Skip("0xff in labels may make the reference's label keys ambiguous (see the top of this file)")
		}
		compareConvert(t, data, diffOptions(opts))
	})
}

func has0xff(p *profile.Profile) bool {
	for _, s := range p.Sample {
		for k, vs := range s.Label {
			if strings.IndexByte(k, 0xff) >= 0 || (len(vs) > 0 && strings.IndexByte(vs[0], 0xff) >= 0) {
				return true
			}
		}
	}
	return false
}

// diffOptions picks options by bits: base labels that conflict with
// sample labels, a hint, a filter, tight limits.
func diffOptions(bits uint8) Options {
	opt := Options{Now: time.Unix(1e9, 0)}
	if bits&1 != 0 {
		opt.Labels = labels.FromStrings("service", "api", "tenant", "t")
		opt.Hint = HintMutex
	}
	if bits&2 != 0 {
		opt.Filter = func(_ string, s labels.Labels) labels.Labels { return labels.NewBuilder(s).Del("span", "pid").Labels() }
	}
	if bits&4 != 0 {
		opt.Limits = Limits{MaxSamples: 50, MaxLocations: 200, MaxStackDepth: 20, MaxStackFrames: 2000, MaxSampleLabels: 6, MaxLabelName: 8, MaxLabelValue: 16}
		opt.Start, opt.Duration = time.Unix(2e9, 0), time.Minute
	}
	return opt
}

// compareConvert converts data with the reference (pprof's parser, the old
// converter) and with Scratch and Convert, and fails on any difference:
// errors of another kind, other profiles or stats, other filter calls.
func compareConvert(t *testing.T, data []byte, opt Options) {
	t.Helper()
	want, wantCalls, wantErr := convertWith(opt, func(opt Options) ([]*model.Profile, Stats, error) {
		p, err := Decode(data, 4<<20)
		if err != nil {
			return nil, Stats{}, err
		}
		return refConvert(p, opt)
	})
	s := NewScratch()
	defer s.Release()
	got, gotCalls, err := convertWith(opt, func(opt Options) ([]*model.Profile, Stats, error) {
		if err := s.Decode(data, 4<<20); err != nil {
			return nil, Stats{}, err
		}
		return s.Convert(opt)
	})
	compareResults(t, "Scratch", got, gotCalls, err, want, wantCalls, wantErr)
	got, gotCalls, err = convertWith(opt, func(opt Options) ([]*model.Profile, Stats, error) {
		p, err := Decode(data, 4<<20)
		if err != nil {
			return nil, Stats{}, err
		}
		return Convert(p, opt)
	})
	compareResults(t, "Convert", got, gotCalls, err, want, wantCalls, wantErr)
}

type result struct {
	profiles []*model.Profile
	stats    Stats
}

// convertWith runs convert with opt's filter, if any, recording its calls.
func convertWith(opt Options, convert func(Options) ([]*model.Profile, Stats, error)) (result, []string, error) {
	var calls []string
	if f := opt.Filter; f != nil {
		opt.Filter = func(typ string, s labels.Labels) labels.Labels {
			calls = append(calls, typ+s.String())
			return f(typ, s)
		}
	}
	ps, st, err := convert(opt)
	return result{ps, st}, calls, err
}

func compareResults(t *testing.T, name string, got result, gotCalls []string, err error, want result, wantCalls []string, wantErr error) {
	t.Helper()
	if (err == nil) != (wantErr == nil) || (err != nil && errKind(err) != errKind(wantErr)) {
		t.Fatalf("%s: err = %v, reference: %v", name, err, wantErr)
	}
	if err != nil {
		return
	}
	if !slices.Equal(gotCalls, wantCalls) {
		t.Fatalf("%s: filter calls\n%q\nreference:\n%q", name, gotCalls, wantCalls)
	}
	if got.stats != want.stats {
		t.Fatalf("%s: stats %+v, reference %+v", name, got.stats, want.stats)
	}
	if len(got.profiles) != len(want.profiles) {
		t.Fatalf("%s: %d profiles, reference %d", name, len(got.profiles), len(want.profiles))
	}
	for i, g := range got.profiles {
		w := want.profiles[i]
		if !reflect.DeepEqual(normalize(g), normalize(w)) {
			t.Fatalf("%s: profile %d:\n got %+v\nwant %+v", name, i, *g, *w)
		}
		checkFrameFPs(t, g.Stacks)
	}
}

// checkFrameFPs checks that the fingerprints the converter attached are
// exactly what a store would compute from the frames.
func checkFrameFPs(t *testing.T, s model.StackSet) {
	t.Helper()
	if len(s.FrameFPs) != len(s.Frames) {
		t.Fatalf("%d frame fingerprints for %d frames", len(s.FrameFPs), len(s.Frames))
	}
	for i, f := range s.Frames {
		if want := model.FrameFP(f); s.FrameFPs[i] != want {
			t.Fatalf("frame %d %+v: fingerprint %x, model.FrameFP %x", i, f, s.FrameFPs[i], want)
		}
	}
}

// normalize makes equal profiles DeepEqual: labels compare by value,
// empty slices equal nil ones, capacities do not count, and frames are
// those the stacks use, in order of use (a frame table may be shared by
// several profiles and hold frames another uses).
func normalize(p *model.Profile) any {
	type flat struct {
		Type     model.Type
		Labels   string
		Time     int64
		Duration time.Duration
		Scale    int64
		Frames   []model.Frame
		Stacks   [][]int32
		Values   []int64
	}
	n := flat{Type: p.Type, Labels: p.Labels.String(), Time: p.Time.UnixNano(), Duration: p.Duration, Scale: p.Scale,
		Values: slices.Clip(p.Stacks.Values)}
	used := map[int32]int32{}
	for _, st := range p.Stacks.Stacks {
		var local []int32
		for _, f := range st {
			l, ok := used[f]
			if !ok {
				l = int32(len(n.Frames))
				used[f] = l
				n.Frames = append(n.Frames, p.Stacks.Frames[f])
			}
			local = append(local, l)
		}
		n.Stacks = append(n.Stacks, local)
	}
	if len(n.Frames) == 0 {
		n.Frames = nil
	}
	if len(n.Values) == 0 {
		n.Values = nil
	}
	return n
}

func errKind(err error) error {
	for _, k := range []error{ErrTooLarge, ErrGzip, ErrZstd, ErrMalformed, ErrBadLabels, ErrUnsupported} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

// TestConvertMatchesReference compares on realistic agent profiles, which
// the fuzz seeds only sample.
func TestConvertMatchesReference(t *testing.T) {
	for seed := range int64(4) {
		p := pproftest.Agent(pproftest.Config{Processes: 1 + int(seed%3), Stacks: 100, Depth: 20, Functions: 300, Seed: seed + 1})
		for bits := range uint8(8) {
			compareConvert(t, pproftest.Encode(p), diffOptions(bits))
		}
	}
}
