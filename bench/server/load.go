package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ingestResult is what the load phase measured.
type ingestResult struct {
	Wall           time.Duration
	Requests       int64
	Profiles       int64 // model profiles: one per process (series) per interval
	Values         int64 // stack values: distinct stacks per profile, summed
	Bytes          int64 // request bodies as sent (zstd)
	RawBytes       int64 // request bodies uncompressed
	Retries        int64 // 503s and network errors retried
	ServerCPU      time.Duration
	GenCPU         time.Duration // the bench process (generator and HTTP clients)
	OtherCPU       time.Duration // every other process on the machine (a shared machine is noisy)
	PeakRSS        int64         // server VmHWM at the end of ingest
	RSSMedian      int64         // median of VmRSS sampled every second
	RSSOver1GiB    time.Duration // how long the sampled VmRSS was above 1 GiB
	ServerProfiles float64       // flightrec_ingest_profiles_total{format="agent"}
	ServerSamples  float64       // flightrec_ingest_samples_total{format="agent"}
	ExpectedAPICPU int64         // cpu nanoseconds sent for service api
}

type job struct {
	interval, node int
}

// ingest sends every interval's profiles of every node, interval by
// interval, from clients concurrent HTTP clients, as fast as the server
// takes them.
func ingest(ctx context.Context, srv *serverProc, f *fleet, start time.Time, intervals, clients int, profileDir string) (*ingestResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tr := &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}

	var res ingestResult
	var apiCPU atomic.Int64
	var reqs, profs, vals, sent, raw, retries atomic.Int64
	jobs := make(chan job, clients*4)
	var wg sync.WaitGroup
	url := srv.base + "/api/v1/ingest/agent"
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dyn, scratch []byte
			for j := range jobs {
				ni := &f.nodeInfo[j.node]
				g := f.groups[ni.group]
				v := g.variants[(j.interval+ni.offset)%len(g.variants)]
				t := start.Add(time.Duration(j.interval) * intervalNS)
				dyn, scratch = dynamicFrame(dyn, scratch, f, j.node, t.UnixNano())
				key := fmt.Sprintf("%s-%d", ni.key, j.interval)
				var got ingestResponse
				n, err := post(ctx, client, url, key, dyn, v.static, &got)
				retries.Add(int64(n))
				if err != nil {
					cancel(fmt.Errorf("%s interval %d: %w", ni.name, j.interval, err))
					return
				}
				want := 0
				for _, s := range v.stacks {
					want += s
				}
				if got.Profiles != len(g.services) || got.Samples != want {
					cancel(fmt.Errorf("%s interval %d: server stored %d profiles and %d samples, sent %d and %d",
						ni.name, j.interval, got.Profiles, got.Samples, len(g.services), want))
					return
				}
				reqs.Add(1)
				profs.Add(int64(len(g.services)))
				vals.Add(int64(want))
				sent.Add(int64(len(dyn) + len(v.static)))
				raw.Add(int64(len(scratch) + v.rawSize))
				for slot, si := range g.services {
					if f.services[si].name == "api" {
						apiCPU.Add(v.cpu[slot])
					}
				}
			}
		}()
	}

	// Server RSS, sampled; progress.
	var rss []int64 // VmRSS every second; written by the sampler only
	stopSampling := make(chan struct{})
	var samplerDone sync.WaitGroup
	samplerDone.Add(1)
	total := int64(intervals * f.nodes)
	go func() {
		defer samplerDone.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastReq := time.Now(), int64(0)
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			rss = append(rss, statusBytes(srv.pid, "VmRSS"))
			if time.Since(last) >= 10*time.Second {
				n := reqs.Load()
				logf("ingest: %d/%d requests (%.0f%%), %.0f req/s, server RSS %s", n, total, 100*float64(n)/float64(total),
					float64(n-lastReq)/time.Since(last).Seconds(), fmtBytes(statusBytes(srv.pid, "VmRSS")))
				last, lastReq = time.Now(), n
			}
		}
	}()
	if profileDir != "" {
		// Go CPU profiles of the server while ingest runs: from 20 s in,
		// and from half-way (a warm dictionary).
		go func() {
			select {
			case <-time.After(20 * time.Second):
			case <-ctx.Done():
				return
			}
			profileServer(ctx, srv, profileDir+"/server-ingest-start.cpu.pb.gz")
			for reqs.Load() < total/2 {
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return
				}
			}
			profileServer(ctx, srv, profileDir+"/server-ingest-half.cpu.pb.gz")
		}()
	}

	cpu0, gen0, busy0 := srv.cpu(), selfCPU(), machineBusy()
	t0 := time.Now()
produce:
	for i := range intervals {
		for n := range f.nodes {
			select {
			case jobs <- job{i, n}:
			case <-ctx.Done():
				break produce
			}
		}
	}
	close(jobs)
	wg.Wait()
	res.Wall = time.Since(t0)
	res.ServerCPU, res.GenCPU = srv.cpu()-cpu0, selfCPU()-gen0
	res.OtherCPU = max(0, machineBusy()-busy0-res.ServerCPU-res.GenCPU)
	res.PeakRSS = statusBytes(srv.pid, "VmHWM")
	close(stopSampling)
	samplerDone.Wait()
	if len(rss) > 0 {
		for _, v := range rss {
			if v > targetRSS {
				res.RSSOver1GiB += time.Second
			}
		}
		slices.Sort(rss)
		res.RSSMedian = rss[len(rss)/2]
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if !srv.alive() {
		return nil, fmt.Errorf("server exited during ingest:\n%s", srv.logTail(20))
	}
	res.Requests, res.Profiles, res.Values = reqs.Load(), profs.Load(), vals.Load()
	res.Bytes, res.RawBytes, res.Retries = sent.Load(), raw.Load(), retries.Load()
	res.ExpectedAPICPU = apiCPU.Load()
	if fams, err := srv.metrics(ctx); err == nil {
		res.ServerProfiles = metricValue(fams, "flightrec_ingest_profiles_total", "format", "agent")
		res.ServerSamples = metricValue(fams, "flightrec_ingest_samples_total", "format", "agent")
	}
	if res.Requests != total {
		return nil, fmt.Errorf("sent %d requests, expected %d", res.Requests, total)
	}
	return &res, nil
}

type ingestResponse struct {
	Profiles int `json:"profiles"`
	Samples  int `json:"samples"`
}

// errRejected is a response that retrying cannot fix.
var errRejected = errors.New("rejected")

// post sends one profile, retrying what the agent retries (408, 429, 5xx,
// network errors) with backoff; it returns the number of retries.
func post(ctx context.Context, client *http.Client, url, key string, dyn, static []byte, out *ingestResponse) (int, error) {
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, io.MultiReader(bytes.NewReader(dyn), bytes.NewReader(static)))
		if err != nil {
			return attempt, err
		}
		req.ContentLength = int64(len(dyn) + len(static))
		req.Header.Set("Content-Type", "application/vnd.google.protobuf")
		req.Header.Set("Content-Encoding", "zstd") // as the agent sends it
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		var status int
		var body []byte
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			status = resp.StatusCode
		}
		switch {
		case ctx.Err() != nil:
			return attempt, ctx.Err()
		case err == nil && status == http.StatusOK:
			if err := json.Unmarshal(body, out); err != nil {
				return attempt, fmt.Errorf("response %q: %w", body, err)
			}
			return attempt, nil
		case err == nil && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests && status < 500:
			return attempt, fmt.Errorf("%w: %d %s", errRejected, status, bytes.TrimSpace(body))
		}
		if attempt >= 30 {
			if err == nil {
				err = fmt.Errorf("%d %s", status, bytes.TrimSpace(body))
			}
			return attempt, fmt.Errorf("giving up after %d attempts: %w", attempt+1, err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return attempt, ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func profileServer(ctx context.Context, srv *serverProc, path string) {
	if err := srv.cpuProfile(ctx, 30, path); err != nil {
		if ctx.Err() == nil {
			logf("server CPU profile: %v", err)
		}
		return
	}
	logf("server CPU profile (30 s): %s", path)
}

// machineBusy is the CPU time all processes used (user, nice, system,
// irq, softirq, steal) from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // not idle (4), iowait (5)
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// selfCPU is the bench process's user+system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// buildVariants pre-generates each group's payloads, in parallel.
func buildVariants(f *fleet, u *universe, perGroup int, seed uint64) {
	type work struct{ g, i int }
	ch := make(chan work)
	var wg sync.WaitGroup
	maxSet := 0
	for _, s := range f.services {
		maxSet = max(maxSet, len(s.stacks))
	}
	for _, g := range f.groups {
		g.variants = make([]*variant, perGroup)
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stamp := make([]uint32, maxSet)
			var gen uint32
			enc := newEncoder()
			defer enc.Close()
			for w := range ch {
				r := newRand(seed, uint64(1000+w.g), uint64(w.i))
				f.groups[w.g].variants[w.i] = buildVariant(r, u, f, f.groups[w.g], stamp, &gen, enc)
			}
		}()
	}
	for g := range f.groups {
		for i := range perGroup {
			ch <- work{g, i}
		}
	}
	close(ch)
	wg.Wait()
}
