package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Targets from the issue, for this 2-core machine.
const (
	targetProfilesPerSec = 2000
	targetRSS            = 1 << 30
	targetBytesPerValue  = 4.0
)

type genInfo struct {
	Wall, CPU        time.Duration
	Functions        int
	Locations        int
	Stacks           int
	PrefixNodes      int
	MeanDepth        float64
	WorkingSets      []string // per service: "api: 9500 stacks"
	Groups           []string // "api+db: 50 nodes"
	PayloadsPerGroup int
	PayloadBytes     int64 // all pre-generated payloads, zstd
}

func genStats(u *universe, f *fleet, wall, cpu time.Duration) genInfo {
	g := genInfo{Wall: wall, CPU: cpu, Functions: len(u.funcs), Locations: len(u.locs), Stacks: len(u.stacks), PrefixNodes: u.prefixNodes()}
	frames := 0
	for _, st := range u.stacks {
		frames += len(st)
	}
	g.MeanDepth = float64(frames) / float64(max(1, len(u.stacks)))
	for i, s := range f.services {
		g.WorkingSets = append(g.WorkingSets, fmt.Sprintf("%s on %d nodes (%d versions), working set %d stacks",
			s.name, f.nodesOf(i), len(s.versions), len(s.stacks)))
	}
	for _, gr := range f.groups {
		var names []string
		for _, s := range gr.services {
			names = append(names, f.services[s].name)
		}
		g.Groups = append(g.Groups, fmt.Sprintf("%s: %d nodes", strings.Join(names, "+"), gr.nodes))
		g.PayloadsPerGroup = len(gr.variants)
		for _, v := range gr.variants {
			g.PayloadBytes += int64(len(v.static))
		}
	}
	return g
}

type report struct {
	Command    string
	Date       time.Time
	Kernel     string
	CPU        string
	CPUs       int
	Opts       options
	Intervals  int
	ServerArgs string

	Gen                  genInfo
	Ingest               *ingestResult
	DiskAfterIngest      diskSize
	Settle               *settleResult
	Queries              []*queryResult
	PeakRSSAll           int64
	ServerSeries         float64
	ServerStoredProfiles float64
	StopTime             time.Duration
	DiskAfterStop        diskSize
	ServerErrors         int
	Breakdown            *breakdown
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**FAIL**"
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

func num(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	// Thousands separators.
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (rp *report) write(w io.Writer) {
	in := rp.Ingest
	secs := in.Wall.Seconds()
	profRate := float64(in.Profiles) / secs
	bytesPerValue := rp.Settle.Metric / float64(in.Values)
	if rp.Settle.Metric == 0 {
		bytesPerValue = float64(rp.Settle.Disk.Total()) / float64(in.Values)
	}

	fmt.Fprintf(w, "## flightrec server benchmark\n\n")
	fmt.Fprintf(w, "Command: `%s`\n\n", rp.Command)
	fmt.Fprintf(w, "- date %s, kernel %s, %d × %s (shared machine)\n", rp.Date.UTC().Format("2006-01-02 15:04 UTC"), rp.Kernel, rp.CPUs, rp.CPU)
	fmt.Fprintf(w, "- server: `flightrec %s`\n", rp.ServerArgs)
	fmt.Fprintf(w, "- fleet: %d nodes; %s\n", rp.Opts.nodes, strings.Join(rp.Gen.WorkingSets, "; "))
	fmt.Fprintf(w, "- node groups (one request per node per interval carries its 1–3 processes): %s\n", strings.Join(rp.Gen.Groups, ", "))
	fmt.Fprintf(w, "- code: %d functions, %d locations; stack universe %d stacks of depth %d–%d (mean %.1f), %d distinct prefixes (stack-tree nodes)\n",
		rp.Gen.Functions, rp.Gen.Locations, rp.Gen.Stacks, minDepth, maxDepth, rp.Gen.MeanDepth, rp.Gen.PrefixNodes)
	fmt.Fprintf(w, "- profiles: 10 s at %d Hz (period %d ns), 200–400 distinct stacks per process drawn by Zipf(s=%.1f) weight from its service's working set, counts Zipf-skewed; labels node, pid, comm, exe, build_id, service, version\n",
		sampleHz, periodNS, zipfProfile)
	fmt.Fprintf(w, "- data: %d intervals (%v, [T−%v, T), T = bench start) × %d nodes = %s requests, %s profiles (series × intervals), %s stack values; %s sent (zstd), %s uncompressed\n",
		rp.Intervals, rp.Opts.span, rp.Opts.span, rp.Opts.nodes, num(float64(in.Requests)), num(float64(in.Profiles)), num(float64(in.Values)),
		fmtBytes(in.Bytes), fmtBytes(in.RawBytes))
	fmt.Fprintf(w, "- generator: %d payloads per node group pre-generated in %v (%v CPU, %s zstd at the fastest level, before the server starts); per request only node, pids, versions, build IDs and time are written (a raw zstd frame prepended), node n sends payload (interval + offset_n) mod %d\n",
		rp.Gen.PayloadsPerGroup, rp.Gen.Wall.Round(time.Millisecond), rp.Gen.CPU.Round(time.Millisecond), fmtBytes(rp.Gen.PayloadBytes), rp.Gen.PayloadsPerGroup)
	fmt.Fprintf(w, "- ingest: %d concurrent HTTP/1.1 clients on 127.0.0.1, in time order (all nodes of an interval before the next), as fast as the server answers; %d retries\n",
		rp.Opts.clients, in.Retries)
	fmt.Fprintf(w, "- server CPU: utime+stime of the server process during ingest / wall time; peak RSS: VmHWM; bytes on disk: flightrec_store_disk_bytes (database + WAL) once the store's size and the server's CPU were still for %v\n",
		rp.Opts.settle)
	fmt.Fprintf(w, "- queries: %d timed runs each after a first (cold) run, over [T−%v, T) with explicit from/to; latency is request to last byte, gzip accepted\n\n", rp.Opts.reps, rp.Opts.span)

	fmt.Fprintf(w, "| metric | value | target | |\n|---|---|---|---|\n")
	row := func(metric, value, target, verdict string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", metric, value, target, verdict)
	}
	row("ingest: profiles/s", num(profRate), "≥ 2,000", passFail(profRate >= targetProfilesPerSec))
	row("ingest: requests/s (one per node and interval)", num(float64(in.Requests)/secs), "", "")
	row("ingest: samples/s (stack values)", num(float64(in.Values)/secs), "", "")
	row("ingest: wall time", ms(in.Wall), "", "")
	row("server CPU during ingest", fmt.Sprintf("%.2f cores", in.ServerCPU.Seconds()/secs), "", "")
	row("generator + clients CPU during ingest (bench process)", fmt.Sprintf("%.2f cores", in.GenCPU.Seconds()/secs), "", "")
	row("other processes' CPU during ingest (shared machine)", fmt.Sprintf("%.2f cores", in.OtherCPU.Seconds()/secs), "", "")
	perProfile := in.ServerCPU / time.Duration(max(1, in.Profiles))
	row("server CPU per profile (per request)", fmt.Sprintf("%s (%s)", ms(perProfile), ms(in.ServerCPU/time.Duration(max(1, in.Requests)))), "", "")
	row(fmt.Sprintf("profiles/s the server's CPU cost allows on %d idle cores", rp.CPUs), num(float64(rp.CPUs)/perProfile.Seconds()), "≥ 2,000", passFail(float64(rp.CPUs)/perProfile.Seconds() >= targetProfilesPerSec))
	row("server peak RSS during ingest (VmHWM)", fmtBytes(in.PeakRSS), "≤ 1 GiB", passFail(in.PeakRSS <= targetRSS))
	row("server RSS during ingest, sampled every second: median; time above 1 GiB", fmt.Sprintf("%s; %v", fmtBytes(in.RSSMedian), in.RSSOver1GiB), "", "")
	row("server peak RSS, whole run (maintenance, queries)", fmtBytes(rp.PeakRSSAll), "", "")
	row("disk right after ingest (db + WAL)", fmt.Sprintf("%s (db %s, WAL %s)", fmtBytes(rp.DiskAfterIngest.Total()), fmtBytes(rp.DiskAfterIngest.DB), fmtBytes(rp.DiskAfterIngest.WAL)), "", "")
	row("disk after maintenance (db + WAL)", fmt.Sprintf("%s (db %s, WAL %s), settled in %v", fmtBytes(rp.Settle.Disk.Total()), fmtBytes(rp.Settle.Disk.DB), fmtBytes(rp.Settle.Disk.WAL), rp.Settle.Wait.Round(time.Second)), "", "")
	row("bytes on disk per stored stack value", fmt.Sprintf("%.2f", bytesPerValue), "≤ 4", passFail(bytesPerValue <= targetBytesPerValue))
	for _, q := range rp.Queries {
		target, verdict := "", ""
		if q.Def.Target > 0 {
			target, verdict = "p50 ≤ "+ms(q.Def.Target), passFail(q.P50 <= q.Def.Target)
		}
		row(q.Def.Name+" p50 / p99", fmt.Sprintf("%s / %s", ms(q.P50), ms(q.P99)), target, verdict)
	}
	fmt.Fprintf(w, "\n")

	fmt.Fprintf(w, "Queries (`%s`):\n\n| query | first run | p50 | p99 | response | check |\n|---|---|---|---|---|---|\n", `cpu{service="api"}`)
	for _, q := range rp.Queries {
		fmt.Fprintf(w, "| `GET %s?%s` | %s | %s | %s | %s | %s |\n", q.Def.Path, q.Def.Params.Encode(), ms(q.First), ms(q.P50), ms(q.P99), fmtBytes(int64(q.Bytes)), q.Summary)
	}
	fmt.Fprintf(w, "\nChecks: the server acknowledged every request with its profiles and stack values (flightrec_ingest_profiles_total %s, flightrec_ingest_samples_total %s); every merge total equals the cpu nanoseconds sent for api (%s); %s series, %s profiles stored; %d ERROR lines in the server log; the server stopped cleanly in %v.\n",
		num(in.ServerProfiles), num(in.ServerSamples), num(float64(in.ExpectedAPICPU)), num(rp.ServerSeries), num(rp.ServerStoredProfiles), rp.ServerErrors, rp.StopTime.Round(time.Millisecond))
	if rp.Settle.TimedOut {
		fmt.Fprintf(w, "\n**Maintenance did not settle within %v; the disk figures are as of then.**\n", rp.Opts.settleTimeout)
	}
	if b := rp.Breakdown; b != nil {
		rp.writeBreakdown(w, b)
	}
}

func (rp *report) writeBreakdown(w io.Writer, b *breakdown) {
	values := float64(rp.Ingest.Values)
	fmt.Fprintf(w, "\nStore after the server stopped (read-only): file %s (WAL %s); %d blocks of %s: %d used, %d free.\n\n",
		fmtBytes(rp.DiskAfterStop.DB), fmtBytes(rp.DiskAfterStop.WAL), b.TotalBlocks, fmtBytes(b.BlockSize), b.UsedBlocks, b.FreeBlocks)
	fmt.Fprintf(w, "| tables | rows | blocks | size | bytes/row | bytes per stack value sent |\n|---|---|---|---|---|---|\n")
	type agg struct {
		rows, blocks int64
		n            int
	}
	kinds := map[string]*agg{}
	var order []string
	for _, t := range b.Tables {
		a, ok := kinds[t.Kind]
		if !ok {
			a = &agg{}
			kinds[t.Kind] = a
			order = append(order, t.Kind)
		}
		a.rows += t.Rows
		a.blocks += t.Blocks
		a.n++
	}
	line := func(name string, rows, blocks int64) {
		bytes := blocks * b.BlockSize
		per := "–"
		if rows > 0 {
			per = fmt.Sprintf("%.2f", float64(bytes)/float64(rows))
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %.3f |\n", name, num(float64(rows)), blocks, fmtBytes(bytes), per, float64(bytes)/values)
	}
	for _, k := range order {
		a := kinds[k]
		line(fmt.Sprintf("%s (%d tables)", k, a.n), a.rows, a.blocks)
	}
	for _, t := range b.Tables {
		if t.Kind == "dictionary" || t.Blocks >= 4 {
			line("`"+t.Name+"`", t.Rows, t.Blocks)
		}
	}
	fmt.Fprintf(w, "\nBlocks are counted per table (distinct block ids of its segments; small tables share blocks, so they are over-counted). Compression of value partitions:\n\n")
	for _, t := range b.Tables {
		if t.Compression != "" {
			fmt.Fprintf(w, "- `%s`: %s\n", t.Name, t.Compression)
		}
	}
	if len(b.Meta) > 0 {
		fmt.Fprintf(w, "\nStore state: %s\n", strings.Join(b.Meta, ", "))
	}
}
