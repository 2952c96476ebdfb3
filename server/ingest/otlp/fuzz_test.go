package otlp

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/protobuf/proto"

	"github.com/flightrec/flightrec/server/model"
)

// fuzzLimits keep a fuzzed request's batch small enough to fuzz quickly.
var fuzzLimits = Limits{MaxFrameRefs: 1 << 16, MaxProfiles: 1 << 10}

func FuzzConvert(f *testing.F) {
	f.Add(marshal(f, testRequest()))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req collectorpb.ExportProfilesServiceRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		b, err := Convert(&req, time.Unix(0, 0), fuzzLimits)
		if err != nil {
			return
		}
		for i, p := range b.Profiles {
			if err := checkProfile(p); err != nil {
				t.Fatalf("profile %d: %v", i, err)
			}
		}
	})
}

// checkProfile checks what Convert promises of every profile.
func checkProfile(p *model.Profile) error {
	if err := p.Stacks.Validate(); err != nil {
		return err
	}
	if p.Scale < 1 || len(p.Stacks.Stacks) == 0 {
		return fmt.Errorf("scale %d, %d stacks", p.Scale, len(p.Stacks.Stacks))
	}
	for _, v := range p.Stacks.Values {
		if v <= 0 {
			return fmt.Errorf("value %d", v)
		}
	}
	if p.Type.Name == "" || p.Labels.Has(model.TypeLabel) {
		return fmt.Errorf("type %q, labels %s", p.Type.Name, p.Labels)
	}
	return nil
}

// The seed corpus holds valid requests, small, that Convert accepts.
func TestFuzzSeedCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/fuzz/FuzzConvert/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus (%v)", err)
	}
	for _, name := range files {
		data := readCorpusFile(t, name)
		if len(data) >= 20<<10 {
			t.Errorf("%s: %d bytes, want < 20 KiB", name, len(data))
		}
		var req collectorpb.ExportProfilesServiceRequest
		if err := proto.Unmarshal(data, &req); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		b, err := Convert(&req, testNow, Limits{})
		if err != nil || len(b.Profiles) == 0 {
			t.Errorf("%s: %v, %d profiles; want a valid request", name, err, len(b.Profiles))
		}
	}
}

// readCorpusFile reads a "go test fuzz v1" file of one []byte.
func readCorpusFile(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() || sc.Text() != "go test fuzz v1" || !sc.Scan() {
		t.Fatalf("%s: not a fuzz corpus file", name)
	}
	lit, ok := strings.CutPrefix(sc.Text(), "[]byte(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	s, err := strconv.Unquote(lit)
	if !ok || !ok2 || err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return []byte(s)
}
