package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// The synthetic fleet's code: a call graph of functions in layers (an entry
// point calls into its packages, which call into libraries, which call into
// the runtime), and a universe of stacks made by random walks down it. The
// walks choose call sites with skewed (Zipf) probabilities, so the stacks
// form a tree whose upper levels are shared by many stacks, as in real
// programs: main → handler → … prefixes repeat and only the last frames
// differ.

const (
	maxLevel   = 64 // deepest call-graph layer
	minDepth   = 10 // frames of a stack, root to leaf
	maxDepth   = 60
	numEntries = 40 // level-1 functions: what goroutines start in
)

// branchAlpha is how readily walks leave the call paths taken before.
var branchAlpha = 0.25

type function struct {
	name, file string
	level      int
	startLine  int64
	sites      []callSite // calls it makes, most frequent first
	leafLines  []int64    // lines where samples land when it is the leaf
}

type callSite struct {
	line   int64
	callee int32
}

// location is one frame of the universe: a function at a line (a call
// site, or a line where the leaf was sampled).
type location struct {
	fn   int32
	line int64
}

type universe struct {
	funcs    []function
	locs     []location
	locIndex map[location]int32
	stacks   [][]int32 // location ids, leaf first (pprof order)
	entry    []int     // entry point (0..numEntries-1) of each stack
}

// Name vocabulary: package paths by layer and identifier words.
var (
	topPackages = []string{
		"internal/handlers", "internal/service", "internal/orders", "internal/catalog",
		"internal/cart", "internal/auth", "internal/billing", "internal/search", "internal/storage",
		"internal/cache", "internal/queue", "internal/jobs", "internal/render", "internal/pricing",
		"pkg/middleware", "pkg/rpc", "pkg/model", "pkg/validate",
	}
	libPackages = []string{
		"google.golang.org/grpc", "google.golang.org/grpc/internal/transport", "google.golang.org/protobuf/proto",
		"google.golang.org/protobuf/internal/impl", "github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/pgconn",
		"go.opentelemetry.io/otel/sdk/trace", "github.com/prometheus/client_golang/prometheus",
		"github.com/klauspost/compress/zstd", "go.uber.org/zap", "go.uber.org/zap/zapcore",
		"github.com/redis/go-redis/v9", "github.com/segmentio/kafka-go", "github.com/go-chi/chi/v5",
		"github.com/json-iterator/go", "golang.org/x/net/http2", "github.com/aws/aws-sdk-go-v2/service/s3",
	}
	stdPackages = []string{
		"net/http", "net", "encoding/json", "compress/gzip", "compress/flate", "bufio", "io", "os",
		"crypto/tls", "crypto/sha256", "crypto/aes", "strings", "strconv", "sort", "time", "context",
		"reflect", "fmt", "bytes", "database/sql", "internal/poll", "math/big", "regexp", "text/template",
		"log/slog", "sync", "syscall", "runtime", "runtime/internal/syscall", "unicode/utf8", "hash/crc32",
	}
	words = []string{
		"Order", "Cart", "Item", "User", "Session", "Token", "Request", "Response", "Handler", "Server",
		"Client", "Conn", "Stream", "Buffer", "Reader", "Writer", "Encoder", "Decoder", "Cache", "Pool",
		"Queue", "Worker", "Job", "Batch", "Index", "Query", "Row", "Rows", "Tx", "Stmt", "Plan",
		"Price", "Tax", "Invoice", "Payment", "Ledger", "Account", "Product", "Catalog", "Search",
		"Span", "Tracer", "Meter", "Counter", "Logger", "Entry", "Field", "Frame", "Header", "Body",
		"Key", "Value", "Map", "Set", "List", "Tree", "Node", "Page", "Block", "Segment",
	}
	verbs = []string{
		"Get", "Put", "Load", "Store", "Read", "Write", "Encode", "Decode", "Marshal", "Unmarshal",
		"Handle", "Serve", "Dial", "Send", "Recv", "Flush", "Close", "Open", "Parse", "Format",
		"Validate", "Compute", "Apply", "Merge", "Sort", "Find", "Lookup", "Insert", "Update", "Delete",
		"Scan", "Next", "Exec", "Query", "Commit", "Rollback", "Render", "Hash", "Sign", "Verify",
	}
)

// newUniverse builds nFuncs functions and nStacks distinct stacks.
func newUniverse(r *rand.Rand, nFuncs, nStacks int) *universe {
	u := &universe{locIndex: map[location]int32{}}
	u.buildFunctions(r, nFuncs)
	u.buildStacks(r, nStacks)
	return u
}

func (u *universe) buildFunctions(r *rand.Rand, n int) {
	n = max(n, numEntries+2*maxLevel)
	seen := map[string]bool{}
	add := func(name, file string, level int) {
		for base, i := name, 2; seen[name]; i++ {
			name = fmt.Sprintf("%s.func%d", base, i)
		}
		seen[name] = true
		u.funcs = append(u.funcs, function{name: name, file: file, level: level, startLine: int64(20 + r.IntN(900))})
	}
	add("runtime.goexit", "/usr/local/go/src/runtime/asm_amd64.s", 0)
	entries := []string{"main.main", "runtime.main", "runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}
	for i := range numEntries {
		name := ""
		if i < len(entries) {
			name = entries[i]
		} else {
			name = "github.com/acme/shop/" + topPackages[i%len(topPackages)] + "." + ident(r) + ".func1"
		}
		add(name, "/src/github.com/acme/shop/"+fileOf(r, "cmd"), 1)
	}
	rest := n - len(u.funcs)
	for i := range rest {
		// Spread the rest over levels 2..maxLevel; upper levels are the
		// programs' own packages, middle ones libraries, deep ones the
		// standard library and the runtime.
		level := 2 + i*(maxLevel-1)/rest
		var pkg, file string
		switch frac := float64(level) / maxLevel; {
		case frac < 0.3:
			p := topPackages[r.IntN(len(topPackages))]
			pkg, file = "github.com/acme/shop/"+p, "/src/github.com/acme/shop/"+fileOf(r, p)
		case frac < 0.65:
			p := libPackages[r.IntN(len(libPackages))]
			pkg, file = p, "/root/go/pkg/mod/"+fileOf(r, p)
		default:
			p := stdPackages[r.IntN(len(stdPackages))]
			pkg, file = p, "/usr/local/go/src/"+fileOf(r, p)
		}
		add(pkg+"."+ident(r), file, level)
	}
	// Levels index functions for callee choice.
	byLevel := make([][]int32, maxLevel+1)
	for i, f := range u.funcs {
		byLevel[f.level] = append(byLevel[f.level], int32(i))
	}
	for i := range u.funcs {
		f := &u.funcs[i]
		nl := 1 + r.IntN(3)
		for range nl {
			f.leafLines = append(f.leafLines, f.startLine+int64(1+r.IntN(120)))
		}
		if f.level == maxLevel {
			continue
		}
		nsites := 1 + r.IntN(5)
		if f.level == 0 {
			nsites = 0 // goexit calls the entries; handled by the walk
		}
		line := f.startLine
		for range nsites {
			line += int64(1 + r.IntN(40))
			lvl := f.level + 1
			switch x := r.Float64(); {
			case x < 0.15:
				lvl += 1
			case x < 0.25:
				lvl += 2 + r.IntN(5)
			}
			lvl = min(lvl, maxLevel)
			cands := byLevel[lvl]
			// Popular callees (hubs like mallocgc or a logger) are called
			// from many places: pick by a Zipf rank within the level.
			callee := cands[zipfIndex(r, len(cands), 1.2)]
			f.sites = append(f.sites, callSite{line: line, callee: callee})
		}
	}
}

func ident(r *rand.Rand) string {
	w := words[r.IntN(len(words))]
	v := verbs[r.IntN(len(verbs))]
	switch r.IntN(4) {
	case 0:
		return "(*" + w + ")." + v
	case 1:
		return w + "." + v
	case 2:
		return strings.ToLower(v[:1]) + v[1:] + w
	default:
		return v + w
	}
}

func fileOf(r *rand.Rand, pkg string) string {
	w := strings.ToLower(words[r.IntN(len(words))])
	return pkg + "/" + w + ".go"
}

// zipfIndex draws from [0, n) with P(i) ∝ 1/(i+1)^s.
func zipfIndex(r *rand.Rand, n int, s float64) int {
	if n <= 1 {
		return 0
	}
	// Inverse transform on the continuous approximation, then clamp.
	u := r.Float64()
	if s == 1 {
		return min(n-1, int(math.Exp(u*math.Log(float64(n)+1)))-1)
	}
	a := 1 - s
	hi := math.Pow(float64(n)+1, a)
	x := math.Pow(1+u*(hi-1), 1/a) - 1
	return min(n-1, max(0, int(x)))
}

func (u *universe) loc(fn int32, line int64) int32 {
	k := location{fn, line}
	if id, ok := u.locIndex[k]; ok {
		return id
	}
	id := int32(len(u.locs))
	u.locs = append(u.locs, k)
	u.locIndex[k] = id
	return id
}

// buildStacks walks the call graph from goexit through each entry point
// until the universe has n distinct stacks, n/numEntries per entry. The
// walks share a tree of call paths and prefer the paths taken before (a
// Chinese-restaurant process: at a node passed N times, a walk takes a
// call site at random with probability branchAlpha/(N+branchAlpha), else
// an edge already taken, by how often): the first frames of a program's
// stacks are few (main, the server loop, the handler dispatch), the
// variety is in the last ones.
func (u *universe) buildStacks(r *rand.Rand, n int) {
	type tnode struct {
		fn       int32
		children []int32 // tree nodes
		sites    []int   // call site of each child
		counts   []int32 // walks through each child
		total    int32
	}
	var tree []tnode
	seen := map[string]bool{}
	var key []byte
	var path []int32
	per := max(1, n/numEntries)
	for e := range numEntries {
		root := int32(len(tree))
		tree = append(tree, tnode{fn: int32(1 + e)})
		got := 0
		for tries := 0; got < per && tries < per*200; tries++ {
			depth := minDepth + r.IntN(maxDepth-minDepth+1)
			path = path[:0]
			path = append(path, u.loc(0, u.funcs[0].startLine+1)) // goexit
			v := root
			for len(path) < depth-1 {
				f := &u.funcs[tree[v].fn]
				if len(f.sites) == 0 {
					break
				}
				nd := &tree[v]
				c := -1
				if x := r.Float64() * (float64(nd.total) + branchAlpha); x < float64(nd.total) {
					for i, cnt := range nd.counts {
						if x -= float64(cnt); x < 0 {
							c = i
							break
						}
					}
					c = max(c, 0)
				} else {
					site := zipfIndex(r, len(f.sites), 1.0)
					c = slices.Index(nd.sites, site)
					if c < 0 {
						child := int32(len(tree))
						callee := f.sites[site].callee
						nd.children = append(nd.children, child)
						nd.sites = append(nd.sites, site)
						nd.counts = append(nd.counts, 0)
						c = len(nd.children) - 1
						tree = append(tree, tnode{fn: callee})
						nd = &tree[v] // tree moved
					}
				}
				nd.counts[c]++
				nd.total++
				path = append(path, u.loc(nd.fn, f.sites[nd.sites[c]].line))
				v = nd.children[c]
			}
			f := &u.funcs[tree[v].fn]
			path = append(path, u.loc(tree[v].fn, f.leafLines[zipfIndex(r, len(f.leafLines), 1.0)]))
			if len(path) < minDepth {
				continue
			}
			key = key[:0]
			for _, l := range path {
				key = binary.LittleEndian.AppendUint32(key, uint32(l))
			}
			if seen[string(key)] {
				continue
			}
			seen[string(key)] = true
			st := slices.Clone(path)
			slices.Reverse(st) // leaf first
			u.stacks = append(u.stacks, st)
			u.entry = append(u.entry, e)
			got++
		}
	}
}

// prefixNodes counts the distinct stack prefixes (root first): the nodes
// of the stack tree a store keeps.
func (u *universe) prefixNodes() int {
	type node struct{ parent, loc int32 }
	ids := map[node]int32{}
	for _, st := range u.stacks {
		var parent int32
		for i := len(st) - 1; i >= 0; i-- {
			k := node{parent, st[i]}
			id, ok := ids[k]
			if !ok {
				id = int32(len(ids) + 1)
				ids[k] = id
			}
			parent = id
		}
	}
	return len(ids)
}

// service is one kind of process in the fleet.
type service struct {
	name     string
	exe      string
	versions []version // chosen per node by weight
	entries  []int     // entry points its stacks start in
	// working set: stack ids (into the universe) by decreasing weight, and
	// the cumulative Zipf weights for sampling.
	stacks []int32
	cum    []float64
	// CPU use: extra samples per distinct stack, drawn from [lo, hi).
	extraLo, extraHi float64
}

type version struct {
	name, buildID string
	weight        float64
}

const (
	zipfProfile = 1.0 // skew of stack popularity within a service
	periodNS    = 10_101_010
	sampleHz    = 99
)

func newServices(r *rand.Rand, u *universe) []*service {
	bid := func() string {
		b := make([]byte, 20)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return fmt.Sprintf("%x", b)
	}
	rangeOf := func(lo, hi int) []int {
		var out []int
		for i := lo; i < hi; i++ {
			out = append(out, i)
		}
		return out
	}
	// Entries 2-4 are the Go runtime's background goroutines (GC, sweeper,
	// scavenger): every service runs them.
	shared := []int{2, 3, 4}
	svcs := []*service{
		{name: "api", exe: "/usr/local/bin/api", entries: append(rangeOf(5, 19), append(shared, 0, 1)...),
			versions: []version{{"1.42.0", bid(), 0.5}, {"1.43.0", bid(), 0.35}, {"1.43.1", bid(), 0.15}},
			extraLo:  0.5, extraHi: 3},
		{name: "db", exe: "/usr/local/bin/db", entries: append(rangeOf(19, 29), shared...),
			versions: []version{{"15.4.2", bid(), 1}}, extraLo: 1, extraHi: 4},
		{name: "worker", exe: "/usr/local/bin/worker", entries: append(rangeOf(29, 40), shared...),
			versions: []version{{"2.7.1", bid(), 1}}, extraLo: 0.3, extraHi: 2},
	}
	for _, s := range svcs {
		for id, e := range u.entry {
			if slices.Contains(s.entries, e) {
				s.stacks = append(s.stacks, int32(id))
			}
		}
		r.Shuffle(len(s.stacks), func(i, j int) { s.stacks[i], s.stacks[j] = s.stacks[j], s.stacks[i] })
		s.cum = make([]float64, len(s.stacks))
		var sum float64
		for i := range s.stacks {
			sum += 1 / math.Pow(float64(i+1), zipfProfile)
			s.cum[i] = sum
		}
	}
	return svcs
}

// drawStacks picks k distinct stacks of s by their Zipf weights and gives
// them sample counts: one each, plus extra samples spread in proportion to
// the weights, so counts are as skewed as real profiles (a few hot stacks,
// a long tail seen once).
func (s *service) drawStacks(r *rand.Rand, k int, stamp []uint32, gen uint32) (ids []int32, counts []int64) {
	k = min(k, len(s.stacks))
	total := s.cum[len(s.cum)-1]
	ranks := make([]int, 0, k)
	for tries := 0; len(ranks) < k && tries < 100*k; tries++ {
		x := r.Float64() * total
		i := sort.SearchFloat64s(s.cum, x)
		i = min(i, len(s.cum)-1)
		if stamp[i] == gen {
			continue
		}
		stamp[i] = gen
		ranks = append(ranks, i)
	}
	slices.Sort(ranks)
	var wsum float64
	for _, rk := range ranks {
		wsum += weight(rk)
	}
	extra := float64(len(ranks)) * (s.extraLo + r.Float64()*(s.extraHi-s.extraLo))
	ids = make([]int32, len(ranks))
	counts = make([]int64, len(ranks))
	for i, rk := range ranks {
		ids[i] = s.stacks[rk]
		counts[i] = 1 + int64(extra*weight(rk)/wsum+r.Float64())
	}
	return ids, counts
}

func weight(rank int) float64 { return 1 / math.Pow(float64(rank+1), zipfProfile) }

// fleet is which node runs what.
type fleet struct {
	nodes    int
	services []*service
	groups   []*group // distinct service combinations
	nodeInfo []nodeInfo
}

// group is the nodes running the same services; its payload variants are
// shared by its nodes (with their own labels and times).
type group struct {
	services []int // indexes into fleet.services, in order
	nodes    int
	variants []*variant
}

type nodeInfo struct {
	name    string
	group   int
	offset  int    // variant offset: node n sends variant (interval+offset) mod len
	pids    []int  // per slot
	version []int  // per slot: index into the service's versions
	key     string // idempotency-key prefix
}

// newFleet lays out n nodes: api everywhere, db on the first tenth, worker
// on 30% of the nodes overlapping db's (so nodes run 1–3 services).
func newFleet(r *rand.Rand, n int, svcs []*service) *fleet {
	f := &fleet{nodes: n, services: svcs}
	dbEnd := max(1, n/10)
	wLo := n / 20
	wHi := wLo + max(1, 3*n/10)
	groupIdx := map[string]int{}
	for i := range n {
		set := []int{0}
		if i < dbEnd {
			set = append(set, 1)
		}
		if i >= wLo && i < wHi {
			set = append(set, 2)
		}
		key := fmt.Sprint(set)
		g, ok := groupIdx[key]
		if !ok {
			g = len(f.groups)
			groupIdx[key] = g
			f.groups = append(f.groups, &group{services: set})
		}
		f.groups[g].nodes++
		ni := nodeInfo{name: fmt.Sprintf("node-%04d", i), group: g, offset: r.IntN(1 << 20)}
		for _, s := range set {
			ni.pids = append(ni.pids, 1000+r.IntN(4_000_000))
			ni.version = append(ni.version, pickVersion(r, svcs[s].versions))
		}
		ni.key = fmt.Sprintf("%s-%012x", ni.name, r.Uint64()&(1<<48-1))
		f.nodeInfo = append(f.nodeInfo, ni)
	}
	return f
}

func pickVersion(r *rand.Rand, vs []version) int {
	var sum float64
	for _, v := range vs {
		sum += v.weight
	}
	x := r.Float64() * sum
	for i, v := range vs {
		if x < v.weight {
			return i
		}
		x -= v.weight
	}
	return len(vs) - 1
}

// profilesPerInterval is the number of (node, service) profiles of one
// interval: the series a full interval adds.
func (f *fleet) profilesPerInterval() int {
	n := 0
	for _, g := range f.groups {
		n += g.nodes * len(g.services)
	}
	return n
}

// nodesOf counts the nodes running service s.
func (f *fleet) nodesOf(s int) int {
	n := 0
	for _, g := range f.groups {
		if slices.Contains(g.services, s) {
			n += g.nodes
		}
	}
	return n
}
