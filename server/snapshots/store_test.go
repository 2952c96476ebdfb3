package snapshots

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/snapshots/snaptest"
	"github.com/flightrec/flightrec/wire/snapshot"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// fixture is a snapshot of node, triggered offset after t0, with the
// given process labels and alert labels.
func fixture(id, node string, offset time.Duration, procs []map[string]string, alert map[string]string) *snapshot.Snapshot {
	s := snaptest.Snapshot(id, t0.Add(offset))
	s.Node = node
	s.Processes = nil
	for i, ls := range procs {
		s.Processes = append(s.Processes, snapshot.Process{PID: uint32(100 * (i + 1)), Labels: ls})
	}
	s.Trigger.Labels = alert
	return s
}

func put(t *testing.T, st *Store, s *snapshot.Snapshot) []byte {
	t.Helper()
	body := snaptest.Encode(t, s)
	if _, created, err := st.Put(body, s); err != nil || !created {
		t.Fatalf("put %s: created %v, err %v", s.ID, created, err)
	}
	return body
}

func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	st, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func ids(sums []Summary) []string {
	out := []string{}
	for _, s := range sums {
		out = append(out, s.ID)
	}
	return out
}

func TestPutGetList(t *testing.T) {
	st := openStore(t, t.TempDir(), Options{})
	api1 := map[string]string{"service": "api", "pod": "api-1"}
	db := map[string]string{"service": "db"}
	bodies := map[string][]byte{
		"a": put(t, st, fixture("a", "n1", 0, []map[string]string{api1, db}, nil)),
		"b": put(t, st, fixture("b", "n2", time.Minute, []map[string]string{{"service": "api", "pod": "api-2"}}, nil)),
		"c": put(t, st, fixture("c", "n3", 2*time.Minute, []map[string]string{db}, map[string]string{"alertname": "DBDown", "service": "db"})),
		"d": put(t, st, fixture("d", "n4", 3*time.Minute, nil, nil)),
	}
	for id, body := range bodies {
		got, err := st.Blob(id)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("blob %s: err %v, %d bytes, want the %d uploaded", id, err, len(got), len(body))
		}
	}
	if m, ok := st.Get("a"); !ok || m.Node != "n1" || m.Processes != 2 || m.Size != int64(len(bodies["a"])) || m.Trigger.Kind != "alert" {
		t.Errorf("get a: %+v, %v", m, ok)
	}
	if _, err := st.Blob("zz"); err == nil {
		t.Error("blob of an unknown id: no error")
	}
	tests := []struct {
		selector string
		from, to time.Duration
		limit    int
		want     []string
		total    int
	}{
		{selector: "", want: []string{"d", "c", "b", "a"}, total: 4},
		{selector: `{service="api"}`, want: []string{"b", "a"}, total: 2},
		{selector: `{service="api",pod="api-1"}`, want: []string{"a"}, total: 1},
		{selector: `{service="db",pod="api-1"}`, want: []string{}, total: 0}, // different processes
		{selector: `{alertname="DBDown"}`, want: []string{"c"}, total: 1},    // trigger labels
		{selector: `{node="n4"}`, want: []string{"d"}, total: 1},             // no processes
		{selector: `{cluster="c1",node=~"n[12]"}`, want: []string{"b", "a"}, total: 2},
		{selector: `{service!="api"}`, want: []string{"d", "c", "a"}, total: 3},
		{selector: "", from: 30 * time.Second, to: 150 * time.Second, want: []string{"c", "b"}, total: 2},
		{selector: "", limit: 1, want: []string{"d"}, total: 4},
	}
	for _, tt := range tests {
		t.Run(tt.selector, func(t *testing.T) {
			var f Filter
			if tt.selector != "" {
				sel, err := query.ParseSelector(tt.selector)
				if err != nil {
					t.Fatal(err)
				}
				f.Matchers = sel.Matchers
			}
			if tt.from != 0 {
				// Triggers fire 1s into each window.
				f.From, f.To = t0.Add(tt.from), t0.Add(tt.to)
			}
			f.Limit = tt.limit
			got, total := st.List(f)
			if !slices.Equal(ids(got), tt.want) || total != tt.total {
				t.Errorf("got %v (total %d), want %v (total %d)", ids(got), total, tt.want, tt.total)
			}
		})
	}
}

func TestPutIdempotent(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, Options{})
	s := snaptest.Snapshot("s1", t0)
	body := put(t, st, s)
	again := snaptest.Snapshot("s1", t0)
	again.Node = "changed"
	sum, created, err := st.Put(snaptest.Encode(t, again), again)
	if err != nil || created || sum.Node != "n1" {
		t.Fatalf("second put: created %v, err %v, node %q: want the first copy kept", created, err, sum.Node)
	}
	if blobs := blobFiles(t, dir); len(blobs) != 1 {
		t.Errorf("blobs %v, want one", blobs)
	}
	if n := indexLines(t, dir); n != 1 {
		t.Errorf("index has %d records, want 1", n)
	}
	if got, _ := st.Blob("s1"); !bytes.Equal(got, body) {
		t.Error("blob is not the first upload")
	}
}

func TestPlainJSONStoredGzipped(t *testing.T) {
	st := openStore(t, t.TempDir(), Options{})
	s := snaptest.Snapshot("plain", t0)
	plain, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Put(plain, s); err != nil {
		t.Fatal(err)
	}
	blob, err := st.Blob("plain")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatalf("stored blob is not gzip: %v", err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, plain) {
		t.Error("stored blob does not inflate to the upload")
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, Options{})
	for i, id := range []string{"a", "b", "c"} {
		put(t, st, fixture(id, "n1", time.Duration(i)*time.Minute, []map[string]string{{"service": "api"}}, nil))
	}
	want, _ := st.List(Filter{})

	// A crash mid-write leaves a temporary blob and a torn index record.
	tmp := filepath.Join(dir, "d.json.gz.123456"+tmpSuffix)
	os.WriteFile(tmp, []byte("\x1f\x8b half a snap"), 0o644)
	f, _ := os.OpenFile(filepath.Join(dir, indexName), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"id":"d","node":"n1","trig`)
	f.Close()

	st = openStore(t, dir, Options{})
	got, _ := st.List(Filter{})
	if !slices.EqualFunc(got, want, summaryEqual) {
		t.Fatalf("after reopen: %v, want %v", ids(got), ids(want))
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file still there: %v", err)
	}
	// The torn record is gone: the next record gets a line of its own.
	put(t, st, fixture("e", "n1", 5*time.Minute, nil, nil))
	st = openStore(t, dir, Options{})
	if got, _ := st.List(Filter{}); !slices.Equal(ids(got), []string{"e", "c", "b", "a"}) {
		t.Errorf("after a put and another reopen: %v", ids(got))
	}
	if n := indexLines(t, dir); n != 4 {
		t.Errorf("index has %d records, want 4", n)
	}
}

func summaryEqual(a, b Summary) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestReopenReconciles(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, Options{})
	put(t, st, fixture("a", "n1", 0, nil, nil))
	put(t, st, fixture("b", "n1", time.Minute, nil, nil))
	// A blob stored just before a crash, without its record; a blob that
	// is not a snapshot; a record whose blob is gone.
	orphan := fixture("orphan", "n9", 2*time.Minute, []map[string]string{{"service": "x"}}, nil)
	os.WriteFile(filepath.Join(dir, "orphan"+blobSuffix), snaptest.Encode(t, orphan), 0o644)
	os.WriteFile(filepath.Join(dir, "junk"+blobSuffix), []byte("not a snapshot"), 0o644)
	os.WriteFile(filepath.Join(dir, "wrongid"+blobSuffix), snaptest.Encode(t, fixture("other", "n1", 0, nil, nil)), 0o644)
	os.Remove(filepath.Join(dir, "a"+blobSuffix))

	st = openStore(t, dir, Options{})
	got, _ := st.List(Filter{})
	if !slices.Equal(ids(got), []string{"orphan", "b"}) {
		t.Fatalf("after reopen: %v, want [orphan b]", ids(got))
	}
	if m, _ := st.Get("orphan"); m.Node != "n9" || len(m.LabelSets) != 1 {
		t.Errorf("reindexed orphan: %+v", m)
	}
	if blobs := blobFiles(t, dir); !slices.Equal(blobs, []string{"b" + blobSuffix, "orphan" + blobSuffix}) {
		t.Errorf("blobs %v", blobs)
	}
	if n := indexLines(t, dir); n != 2 {
		t.Errorf("index not rewritten: %d records", n)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := t0
	clock := func() time.Time { return now }
	st := openStore(t, dir, Options{Retention: time.Hour, Now: clock})
	put(t, st, fixture("old", "n1", 0, nil, nil))
	now = now.Add(50 * time.Minute)
	put(t, st, fixture("new", "n1", time.Minute, nil, nil))
	now = now.Add(20 * time.Minute) // old received 70 min ago, new 20
	if got, _ := st.List(Filter{}); !slices.Equal(ids(got), []string{"new"}) {
		t.Fatalf("after retention: %v, want [new]", ids(got))
	}
	if blobs := blobFiles(t, dir); !slices.Equal(blobs, []string{"new" + blobSuffix}) {
		t.Errorf("blobs %v", blobs)
	}
	if n, b := st.Stats(); n != 1 || b <= 0 {
		t.Errorf("stats %d snapshots, %d bytes", n, b)
	}
	st = openStore(t, dir, Options{Retention: time.Hour, Now: clock})
	if got, _ := st.List(Filter{}); !slices.Equal(ids(got), []string{"new"}) {
		t.Errorf("after reopen: %v, want [new]", ids(got))
	}
}

func blobFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), blobSuffix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func indexLines(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, indexName))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// TestConcurrentPuts races uploads of the same and of different ids: each
// id is created once, and the index on disk agrees with memory.
func TestConcurrentPuts(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir, Options{})
	const ids, copies = 4, 5
	created := make(chan string, ids*copies)
	var wg sync.WaitGroup
	for i := range ids * copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := fixture(fmt.Sprintf("c%d", i%ids), "n1", time.Duration(i%ids)*time.Minute, nil, nil)
			if _, ok, err := st.Put(snaptest.Encode(t, s), s); err != nil {
				t.Error(err)
			} else if ok {
				created <- s.ID
			}
		}()
	}
	wg.Wait()
	close(created)
	var got []string
	for id := range created {
		got = append(got, id)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"c0", "c1", "c2", "c3"}) {
		t.Errorf("created %v", got)
	}
	if n := indexLines(t, dir); n != ids || len(blobFiles(t, dir)) != ids {
		t.Errorf("%d index records, %d blobs, want %d", n, len(blobFiles(t, dir)), ids)
	}
}
