package query

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/flightrec/flightrec/server/model"
)

var cpu = model.Type{Name: "cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}

// sample is the fixture: main calls work, which has two functions inlined
// into it (parse inlined into decode, inlined into work); work also calls
// into libc without symbols; and equal frames sit at two indexes, as in a
// merge of sets with their own tables.
func sample() *model.StackSet {
	const app = "/app/server"
	return &model.StackSet{
		Frames: []model.Frame{
			0: {Function: "main.main", File: "main.go", Line: 10, Mapping: app, BuildID: "b1"},
			1: {Function: "main.work", File: "work.go", Line: 20, Mapping: app, BuildID: "b1"},
			2: {Function: "main.parse", File: "parse.go", Line: 30, Inlined: true, Mapping: app, BuildID: "b1"},
			3: {Function: "main.decode", File: "decode.go", Line: 40, Inlined: true, Mapping: app, BuildID: "b1"},
			4: {Mapping: "/usr/lib/libc.so.6", BuildID: "c1", Address: 0x9a3f0},
			5: {Function: "main.main", File: "main.go", Line: 10, Mapping: app, BuildID: "b1"}, // = 0
			6: {Function: "main.work", File: "work.go", Line: 21, Mapping: app, BuildID: "b1"}, // another line
		},
		Stacks: [][]int32{
			{2, 3, 1, 0}, // parse (inl) ← decode (inl) ← work ← main
			{4, 1, 0},    // libc ← work ← main
			{1, 5},       // work ← main, main at another index
			{6, 0},       // work at another line
			{3, 1, 0},    // decode (inl) ← work ← main
			{0},          // main alone
		},
		Values: []int64{100, 40, 7, 3, 20, 5},
	}
}

func TestPprofInlineGrouping(t *testing.T) {
	p := Pprof(sample(), cpu, time.Unix(1795168800, 0), time.Unix(1795172400, 0))
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	first := p.Sample[0].Location
	if len(first) != 2 {
		t.Fatalf("first sample has %d locations, want 2 (parse+decode+work inlined into one, main)", len(first))
	}
	if got := lineNames(first[0]); !slices.Equal(got, []string{"main.parse", "main.decode", "main.work"}) {
		t.Errorf("inlined location lines %v, want innermost first: parse, decode, work", got)
	}
	if first[1] != p.Sample[2].Location[1] {
		t.Errorf("main.main at two frame indexes got two locations")
	}
	if p.Sample[0].Location[0] == p.Sample[4].Location[0] {
		t.Errorf("decode←work and parse←decode←work share a location")
	}
	libc := p.Sample[1].Location[0]
	if len(libc.Line) != 0 || libc.Address != 0x9a3f0 || libc.Mapping == nil || libc.Mapping.File != "/usr/lib/libc.so.6" || libc.Mapping.BuildID != "c1" {
		t.Errorf("unsymbolized location %+v (mapping %+v), want address 0x9a3f0 in libc, no lines", libc, libc.Mapping)
	}
	if libc.Mapping.HasFunctions {
		t.Errorf("libc mapping claims functions: pprof would not symbolize it")
	}
	if len(p.Mapping) != 2 || len(p.Location) != 6 || len(p.Function) != 4 {
		t.Errorf("%d mappings, %d locations, %d functions; want 2, 6, 4", len(p.Mapping), len(p.Location), len(p.Function))
	}
}

func lineNames(loc *profile.Location) []string {
	var out []string
	for _, ln := range loc.Line {
		out = append(out, ln.Function.Name)
	}
	return out
}

// TestPprofRoundTrip writes and parses the profile and expects the same
// stacks, values, types and times back.
func TestPprofRoundTrip(t *testing.T) {
	set := sample()
	start, end := time.Unix(1795168800, 0), time.Unix(1795172400, 0)
	var buf bytes.Buffer
	if err := Pprof(set, cpu, start, end).Write(&buf); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if st := p.SampleType[0]; st.Type != "cpu" || st.Unit != "nanoseconds" || p.PeriodType.Type != "cpu" {
		t.Errorf("sample type %v, period type %v", st, p.PeriodType)
	}
	if p.TimeNanos != start.UnixNano() || p.DurationNanos != int64(time.Hour) {
		t.Errorf("time %d, duration %d", p.TimeNanos, p.DurationNanos)
	}
	var got, want []string
	for _, s := range p.Sample {
		var names []string
		for _, loc := range s.Location {
			if len(loc.Line) == 0 {
				names = append(names, FrameName(model.Frame{Mapping: loc.Mapping.File, Address: loc.Address}))
			}
			for _, ln := range loc.Line {
				names = append(names, ln.Function.Name)
			}
		}
		got = append(got, strings.Join(names, ";")+" "+itoa(s.Value[0]))
	}
	for i, st := range set.Stacks {
		var names []string
		for _, f := range st {
			names = append(names, FrameName(set.Frames[f]))
		}
		want = append(want, strings.Join(names, ";")+" "+itoa(set.Values[i]))
	}
	if !slices.Equal(got, want) {
		t.Errorf("round trip:\n got %q\nwant %q", got, want)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestPprofDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	for _, w := range []*bytes.Buffer{&a, &b} {
		if err := Pprof(sample(), cpu, time.Unix(1795168800, 0), time.Unix(1795172400, 0)).WriteUncompressed(w); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two conversions of the same stacks differ")
	}
}

// TestPprofToolShowsInline runs the real pprof on the profile: inlined
// frames must show as "(inline)" and unsymbolized ones by their object.
func TestPprofToolShowsInline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go tool pprof")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "p.pb.gz")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := Pprof(sample(), cpu, time.Unix(1795168800, 0), time.Unix(1795172400, 0)).Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command("go", "tool", "pprof", "-traces", "-symbolize=none", file)
	cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	for _, want := range []string{"main.parse (inline)", "main.decode (inline)", "main.work", "[libc.so.6]"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pprof -traces output lacks %q:\n%s", want, out)
		}
	}
}
