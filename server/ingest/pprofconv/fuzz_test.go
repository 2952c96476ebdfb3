package pprofconv

import (
	"bytes"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"
)

// FuzzPprofConv feeds bytes through Decode and Convert: neither may panic,
// and whatever converts must be a valid model. Seeds: testdata/fuzz (a real
// Go CPU profile plain, gzipped, and zstd-compressed in one frame, in two
// and truncated) and hand-built profiles, the agent's also as it sends it
// (zstd).
func FuzzPprofConv(f *testing.F) {
	for _, p := range []*builder{
		newBuilder("cpu/nanoseconds").sample([]string{"a", "b"}, []int64{10}, "tenant", "a", "http.method", "GET"),
		newBuilder("contentions/count", "delay/nanoseconds").sample([]string{"a"}, []int64{1, 100}),
	} {
		var buf bytes.Buffer
		if err := p.p.WriteUncompressed(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	var agent bytes.Buffer
	if err := agentProfile(52631578).WriteUncompressed(&agent); err != nil {
		f.Fatal(err)
	}
	f.Add(agent.Bytes())
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(zw.EncodeAll(agent.Bytes(), nil))
	base := labels.FromStrings("service", "fuzz", "tenant", "t")
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data, 4<<20)
		if err != nil {
			return
		}
		out, _, err := Convert(p, Options{Labels: base, Hint: HintMutex, Now: time.Unix(1e9, 0), Filter: dropSpan})
		if err != nil {
			return
		}
		for _, mp := range out {
			checkProfile(t, mp.Type.Name, mp.Labels, mp.Scale, mp.Stacks.Validate(), mp.Stacks.Values)
			checkFrameFPs(t, mp.Stacks)
		}
	})
}

// dropSpan is a stand-in limiter, so filtered output is checked too.
func dropSpan(_ string, s labels.Labels) labels.Labels {
	return labels.NewBuilder(s).Del("span").Labels()
}

func checkProfile(t *testing.T, typ string, ls labels.Labels, scale int64, valid error, values []int64) {
	t.Helper()
	if valid != nil {
		t.Fatalf("%s%s: %v", typ, ls, valid)
	}
	if !ValidLabelName(typ) {
		t.Fatalf("type name %q is not a valid metric name", typ)
	}
	if scale < 1 {
		t.Fatalf("%s%s: scale %d", typ, ls, scale)
	}
	if ls.Get("service") != "fuzz" || ls.Get("tenant") != "t" {
		t.Fatalf("%s%s: base labels lost or overridden", typ, ls)
	}
	if ls.Has("span") {
		t.Fatalf("%s%s: the filter's decision was ignored", typ, ls)
	}
	if _, dup := ls.HasDuplicateLabelNames(); dup {
		t.Fatalf("%s: duplicate label names in %s", typ, ls)
	}
	ls.Range(func(l labels.Label) {
		if !ValidLabelName(l.Name) || ReservedLabelName(l.Name) || l.Value == "" {
			t.Fatalf("%s: bad label %q=%q", typ, l.Name, l.Value)
		}
	})
	for _, v := range values {
		if v <= 0 {
			t.Fatalf("%s%s: stored value %d", typ, ls, v)
		}
	}
}
