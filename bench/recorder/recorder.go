package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// defaultRingBytes is the agent's default --recorder-bytes.
const defaultRingBytes = 64 << 20

// recorderResult is parts 2 and 3: one agent with the default ring and
// fast triggers, under the highest pingpong rate.
type recorderResult struct {
	Argv      []string
	Rate      int
	Age       time.Duration // agent age (since exec) at the ring read
	RingBytes float64       // flightrec_agent_recorder_bytes at the read
	RingMax   float64       // its maximum over the run (scraped every second)
	Scrapes   int
	Records   float64
	Evicted   float64
	RSS, HWM  uint64 // VmRSS at the read, VmHWM
	Lat       []trigLatency
	Failed    []string
}

// trigLatency is one trigger, from just before the POST that fired it.
type trigLatency struct {
	Stored   time.Duration // until GET /api/v1/snapshots lists it
	Received time.Duration // until the server's received_ns
}

// snapshotList is the answer of GET /api/v1/snapshots (docs/api.md).
type snapshotList struct {
	Snapshots []struct {
		ID         string `json:"id"`
		ReceivedNS int64  `json:"received_ns"`
	} `json:"snapshots"`
}

func (b *bench) recorderRun(ctx context.Context) (*recorderResult, error) {
	r := &recorderResult{Rate: slices.Max(b.opt.rates)}
	ping, err := b.startPingpong(ctx, r.Rate)
	if err != nil {
		return nil, err
	}
	defer ping.stop(5 * time.Second)
	agent, admin, err := b.startAgent(ctx, "--snapshot-before", b.opt.before.String(), "--snapshot-after", b.opt.after.String(),
		"--trigger-cooldown", "0s", "--trigger-rate-limit", "1000/1m")
	if err != nil {
		return nil, err
	}
	defer b.stopAgent(agent)
	r.Argv = agent.cmd.Args
	stopWatch := watchRing(ctx, "http://"+admin+"/metrics", &r.RingMax, &r.Scrapes)
	defer stopWatch()
	// Triggers start once the ring holds a whole window before them.
	warmup := b.opt.before + 3*time.Second
	logf("recorder run: agent pid %d, pingpong at %d sw/s; warm-up %v, then %d triggers", agent.pid(), r.Rate, warmup, b.opt.triggers)
	if err := sleepWatching(ctx, warmup, agent, ping); err != nil {
		return nil, err
	}
	if err := b.fireAll(ctx, admin, r, agent, ping); err != nil {
		return nil, err
	}
	if err := sleepWatching(ctx, time.Until(agent.started.Add(b.opt.ringAfter)), agent, ping); err != nil {
		return nil, err
	}
	stopWatch()
	return r, b.readRing(ctx, admin, agent, r)
}

// fireAll fires the triggers one at a time, each once the previous one is
// stored (or has failed).
func (b *bench) fireAll(ctx context.Context, admin string, r *recorderResult, cs ...*child) error {
	for i := 1; i <= b.opt.triggers; i++ {
		lat, err := b.fireOnce(ctx, admin, i)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			r.Failed = append(r.Failed, err.Error())
			logf("trigger %d: %v", i, err)
		} else {
			r.Lat = append(r.Lat, lat)
		}
		for _, c := range cs {
			if c.exited() {
				return fmt.Errorf("%s exited during the triggers:\n%s", c.name, lastLines(c.output(), 20))
			}
		}
	}
	return nil
}

// fireOnce fires one trigger on the agent's admin endpoint and polls the
// server's snapshot list every 10 ms until it holds the snapshot.
func (b *bench) fireOnce(ctx context.Context, admin string, n int) (trigLatency, error) {
	q := url.Values{"reason": {"bench-" + strconv.Itoa(n)}, "after": {b.opt.after.String()}}
	t0 := time.Now()
	body, err := do(ctx, http.MethodPost, "http://"+admin+"/trigger?"+q.Encode())
	if err != nil {
		return trigLatency{}, err
	}
	var fired struct{ Outcome, ID string }
	if err := json.Unmarshal(body, &fired); err != nil || fired.Outcome != "fired" {
		return trigLatency{}, fmt.Errorf("not fired: %s", body)
	}
	for deadline := t0.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var list snapshotList
		if err := getJSON(ctx, b.serverURL+"/api/v1/snapshots?limit=10", &list); err != nil {
			return trigLatency{}, err
		}
		for _, s := range list.Snapshots {
			if s.ID == fired.ID {
				return trigLatency{Stored: time.Since(t0), Received: time.Unix(0, s.ReceivedNS).Sub(t0)}, nil
			}
		}
	}
	return trigLatency{}, fmt.Errorf("snapshot %s not listed by the server 30 s after the trigger", fired.ID)
}

// watchRing scrapes the ring's bytes every second into *maxBytes until the
// returned stop is called (stop may be called more than once).
func watchRing(ctx context.Context, metricsURL string, maxBytes *float64, n *int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for t := time.NewTicker(time.Second); ; {
			if m, err := scrape(ctx, metricsURL); err == nil {
				*maxBytes, *n = max(*maxBytes, m[metricRingBytes]), *n+1
			}
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// readRing reads the ring's metrics and the agent's memory.
func (b *bench) readRing(ctx context.Context, admin string, agent *child, r *recorderResult) error {
	m, err := scrape(ctx, "http://"+admin+"/metrics")
	if err != nil {
		return err
	}
	r.Age = time.Since(agent.started)
	r.RingBytes, r.Records, r.Evicted = m[metricRingBytes], m[metricRingRecords], m[metricRingEvicted]
	r.RingMax = max(r.RingMax, r.RingBytes)
	st, err := statusFields(fmt.Sprintf("/proc/%d/status", agent.pid()))
	if err != nil {
		return err
	}
	r.RSS, r.HWM = st["VmRSS"], st["VmHWM"]
	logf("ring at %v: %.1f MiB (max %.1f MiB), %.0f records, %.0f evicted; agent RSS %.1f MiB (peak %.1f MiB)",
		r.Age.Round(time.Second), r.RingBytes/mib, r.RingMax/mib, r.Records, r.Evicted, float64(r.RSS)/mib, float64(r.HWM)/mib)
	return nil
}
