package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/flightrec/flightrec/server/api"
	"github.com/flightrec/flightrec/server/client"
	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/snapshots"
)

func runSnapshots(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("snapshots", e)
	setUsage(fs, e, "flightrec snapshots [--selector SELECTOR] [--since -1d] [--limit 20]\n\n"+
		"Lists flight-recorder snapshots, newest first: those of processes (or\n"+
		"alerts) SELECTOR matches, triggered since --since.")
	var sf serverFlags
	sf.register(fs)
	sel := fs.String("selector", "", "only snapshots with a process or alert these labels match, e.g. '{service=\"api\"}'")
	since := fs.String("since", "-1d", "only snapshots triggered since this `time`: RFC 3339, -1d, ...")
	limit := fs.Int("limit", 20, "show at most this many")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (the selector goes in --selector)", pos[0])
	}
	if *sel != "" {
		if _, err := query.ParseSelector(*sel); err != nil {
			return usagef("--selector: %v", err)
		}
	}
	if _, err := query.ParseTime(*since, time.Now()); err != nil {
		return usagef("--since: %v", err)
	}
	if *limit < 1 || *limit > 10_000 {
		return usagef("--limit %d: want 1 to 10000", *limit)
	}
	params := url.Values{"from": {*since}, "limit": {strconv.Itoa(*limit)}}
	if *sel != "" {
		params.Set("query", *sel)
	}
	var list snapshots.ListResponse
	if err := sf.getJSON(ctx, snapshots.Path, params, &list); err != nil {
		return err
	}
	if len(list.Snapshots) == 0 {
		fmt.Fprintln(e.stderr, "no snapshots match")
		return nil
	}
	printSnapshots(e.stdout, list)
	return nil
}

func printSnapshots(w io.Writer, list snapshots.ListResponse) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tID\tNODE\tTRIGGER\tREASON")
	for _, s := range list.Snapshots {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", time.Unix(0, s.Trigger.TimeNS).UTC().Format(time.RFC3339),
			s.ID, s.Node, s.Trigger.Kind, oneLine(s.Trigger.Reason))
	}
	tw.Flush()
	if list.Total > len(list.Snapshots) {
		fmt.Fprintf(w, "(%d of %d; --limit shows more)\n", len(list.Snapshots), list.Total)
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func runSnapshot(ctx context.Context, e *env, args []string) error {
	const synopsis = "flightrec snapshot get ID [-o FILE]\n" +
		"       flightrec snapshot pprof ID [--type cpu|off_cpu] [--from -10s] [--to +2s] [--pid N] [--tid N] [-o FILE]\n" +
		"       flightrec snapshot timeline ID [--step 100ms] [--pid N]\n\n" +
		"get downloads the snapshot as the agent sent it (gzipped JSON); pprof cuts a\n" +
		"profile out of it for go tool pprof, times as Unix nanoseconds or offsets\n" +
		"from the trigger; timeline summarizes what each process did around the trigger."
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlagSet("snapshot", e)
		setUsage(fs, e, synopsis)
		if _, err := parseFlags(fs, args); err != nil {
			return err
		}
		return usagef("missing subcommand: get, pprof or timeline")
	}
	sub := map[string]func(context.Context, *env, []string, string) error{
		"get": snapshotGet, "pprof": snapshotPprof, "timeline": snapshotTimeline,
	}[args[0]]
	if sub == nil {
		return usagef("unknown subcommand %q: want get, pprof or timeline", args[0])
	}
	return sub(ctx, e, args[1:], synopsis)
}

// idArg returns the one positional argument, a snapshot id.
func idArg(pos []string) (string, error) {
	if len(pos) != 1 {
		return "", usagef("want one snapshot ID, got %d arguments", len(pos))
	}
	return pos[0], nil
}

func snapshotGet(ctx context.Context, e *env, args []string, synopsis string) error {
	fs := newFlagSet("snapshot get", e)
	setUsage(fs, e, synopsis)
	var sf serverFlags
	sf.register(fs)
	out := fs.String("o", "", "write to `FILE` (- for stdout; default ID.json.gz)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	id, err := idArg(pos)
	if err != nil {
		return err
	}
	data, _, err := sf.call(ctx, apiRequest{method: http.MethodGet, path: snapshots.Path + "/" + url.PathEscape(id), keepGzip: true})
	if err != nil {
		return err
	}
	if *out == "" {
		*out = id + ".json.gz"
	}
	if err := writeOutput(e, *out, data); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	fmt.Fprintf(e.stderr, "wrote %s (%d bytes, gzipped JSON)\n", displayName(*out), len(data))
	return nil
}

func snapshotPprof(ctx context.Context, e *env, args []string, synopsis string) error {
	fs := newFlagSet("snapshot pprof", e)
	setUsage(fs, e, synopsis)
	var sf serverFlags
	sf.register(fs)
	typ := fs.String("type", snapshots.TypeCPU, "cpu (on-CPU samples) or off_cpu (time blocked or waiting)")
	from := fs.String("from", "", "start: Unix ns, or an offset from the trigger such as -10s (default: the window's start)")
	to := fs.String("to", "", "end, likewise, e.g. +2s (default: the window's end)")
	pid := fs.Uint("pid", 0, "only this process")
	tid := fs.Uint("tid", 0, "only this thread")
	out := fs.String("o", "", "write the profile to `FILE` (- for stdout; default ID.TYPE.pb.gz)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	id, err := idArg(pos)
	if err != nil {
		return err
	}
	params, err := windowParams(*typ, *from, *to, *pid, *tid)
	if err != nil {
		return err
	}
	data, h, err := sf.call(ctx, apiRequest{method: http.MethodGet, path: snapshots.Path + "/" + url.PathEscape(id) + "/pprof", params: params})
	if err != nil {
		return err
	}
	if *out == "" {
		*out = id + "." + *typ + ".pb.gz"
	}
	if err := writeOutput(e, *out, data); err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	fmt.Fprintln(e.stderr, summary(*out, data, h.Get(api.MessageHeader)))
	return nil
}

// windowParams checks pprof's flags and encodes them.
func windowParams(typ, from, to string, pid, tid uint) (url.Values, error) {
	if typ != snapshots.TypeCPU && typ != snapshots.TypeOffCPU {
		return nil, usagef("--type %q: want cpu or off_cpu", typ)
	}
	v := url.Values{"type": {typ}}
	for _, f := range []struct{ name, value string }{{"from", from}, {"to", to}} {
		if f.value == "" {
			continue
		}
		if _, err := snapshots.ParseWindowTime(f.value, time.Now()); err != nil {
			return nil, usagef("--%s: %v", f.name, err)
		}
		v.Set(f.name, f.value)
	}
	for _, f := range []struct {
		name  string
		value uint
	}{{"pid", pid}, {"tid", tid}} {
		if f.value > 0 {
			v.Set(f.name, strconv.FormatUint(uint64(f.value), 10))
		}
	}
	return v, nil
}

func writeOutput(e *env, name string, data []byte) error {
	if name == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	return os.WriteFile(name, data, 0o644)
}

func displayName(out string) string {
	if out == "-" {
		return "stdout"
	}
	return out
}

// apiRequest is a request for an endpoint server/client has no method for.
type apiRequest struct {
	method, path string
	params       url.Values
	body         []byte // JSON
	keepGzip     bool   // return a gzipped body as it came
}

// call sends r to the server and returns the body and headers of a 2xx
// answer; other answers become a *client.Error with the server's message.
func (f *serverFlags) call(ctx context.Context, r apiRequest) ([]byte, http.Header, error) {
	c, err := f.client() // checks the URL and reads the token
	if err != nil {
		return nil, nil, err
	}
	u := strings.TrimSuffix(f.server, "/") + r.path
	if len(r.params) > 0 {
		u += "?" + r.params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, bytes.NewReader(r.body))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	// Asked for explicitly, gzip is not undone by Go: snapshots stay as stored.
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, u, unwrapURL(err))
	}
	defer resp.Body.Close()
	data, err := readAnswer(resp, r.keepGzip)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read answer: %w", r.method, r.path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, nil, &client.Error{Method: r.method, Path: r.path, Status: resp.StatusCode, Message: errorText(data)}
	}
	return data, resp.Header, nil
}

func readAnswer(resp *http.Response, keepGzip bool) ([]byte, error) {
	data, err := io.ReadAll(resp.Body)
	if err != nil || keepGzip && resp.StatusCode/100 == 2 || resp.Header.Get("Content-Encoding") != "gzip" {
		return data, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// errorText is the server's {"error": ...} message, or the start of a
// body that is not one (a proxy's page).
func errorText(body []byte) string {
	var e struct{ Error string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 512 {
		s = s[:512] + "..."
	}
	if s == "" {
		s = "(no message)"
	}
	return s
}

func (f *serverFlags) getJSON(ctx context.Context, path string, params url.Values, v any) error {
	data, _, err := f.call(ctx, apiRequest{method: http.MethodGet, path: path, params: params})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	return nil
}

func snapshotTimeline(ctx context.Context, e *env, args []string, synopsis string) error {
	fs := newFlagSet("snapshot timeline", e)
	setUsage(fs, e, synopsis)
	var sf serverFlags
	sf.register(fs)
	step := fs.Duration("step", 100*time.Millisecond, "resolution the server computes at; columns merge steps to fit the width")
	pid := fs.Uint("pid", 0, "only this process")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	id, err := idArg(pos)
	if err != nil {
		return err
	}
	if *step < time.Millisecond {
		return usagef("--step %v: want at least 1ms", *step)
	}
	params := url.Values{"step": {step.String()}}
	if *pid > 0 {
		params.Set("pid", strconv.FormatUint(uint64(*pid), 10))
	}
	var tl snapshots.Timeline
	if err := sf.getJSON(ctx, snapshots.Path+"/"+url.PathEscape(id)+"/timeline", params, &tl); err != nil {
		return err
	}
	printTimeline(e.stdout, &tl)
	return nil
}

// Layout of the timeline summary.
const (
	timelineColumns   = 60 // width of the activity sparklines
	timelineProcesses = 15 // busiest processes shown
)

// printTimeline summarizes a timeline: the trigger, each busy process's
// on- and off-CPU time with a sparkline of its CPU, and the events, with
// times relative to the trigger.
func printTimeline(w io.Writer, tl *snapshots.Timeline) {
	trig := tl.Trigger
	window := time.Duration(tl.EndNS - tl.StartNS)
	fmt.Fprintf(w, "snapshot %s of node %s\n", tl.ID, tl.Node)
	fmt.Fprintf(w, "window   %s, %v: %s to %s from the trigger\n", time.Unix(0, tl.StartNS).UTC().Format(time.RFC3339Nano), window,
		offset(tl.StartNS-trig.TimeNS), offset(tl.EndNS-trig.TimeNS))
	fmt.Fprintf(w, "trigger  %s: %s%s\n", trig.Kind, oneLine(trig.Reason), triggerDetails(trig.Selector, trig.PID, trig.ID))
	st := tl.Stats
	fmt.Fprintf(w, "stats    %d lost samples, %d ring records evicted, %d unknown stacks", st.LostSamples, st.RingEvicted, st.UnknownStacks)
	if st.RingStartNS > tl.StartNS {
		fmt.Fprintf(w, "; the ring only reached back to %s", offset(st.RingStartNS-trig.TimeNS))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	printProcesses(w, tl)
	fmt.Fprintln(w)
	printEvents(w, tl)
}

func triggerDetails(selector string, pid uint32, id string) string {
	var parts []string
	if selector != "" {
		parts = append(parts, "selector "+selector)
	}
	if pid != 0 {
		parts = append(parts, fmt.Sprintf("pid %d", pid))
	}
	if id != "" {
		parts = append(parts, "server id "+id)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// offset prints a time relative to the trigger: -1.5s, +200ms.
func offset(ns int64) string {
	d := time.Duration(ns).Round(time.Millisecond)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

func printProcesses(w io.Writer, tl *snapshots.Timeline) {
	if len(tl.Processes) == 0 {
		fmt.Fprintln(w, "no process activity in the window")
		return
	}
	cols := columns(tl.Steps)
	var peak int64
	sparks := make([][]int64, len(tl.Processes))
	for i, p := range tl.Processes {
		sparks[i] = downsample(p.CPUNS, cols)
		for _, v := range sparks[i] {
			peak = max(peak, v)
		}
	}
	mark := make([]rune, cols)
	for i := range mark {
		mark[i] = ' '
	}
	if t := tl.Trigger.TimeNS - tl.StartNS; t >= 0 && t < tl.EndNS-tl.StartNS {
		mark[int(t*int64(cols)/(tl.EndNS-tl.StartNS))] = 'v'
	}
	fmt.Fprintf(w, "on-CPU time per column of %v, v marking the trigger:\n", time.Duration((tl.EndNS-tl.StartNS)/int64(cols)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PID\tCPU\tOFF-CPU\tPROCESS\t%s\n", strings.TrimRight(string(mark), " "))
	for i, p := range tl.Processes {
		if i == timelineProcesses {
			fmt.Fprintf(tw, "...\t\t\t%d more processes\t\n", len(tl.Processes)-i)
			break
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", p.PID, formatValue(p.Total.CPUNS, "nanoseconds"), offCPU(p.Total.OffCPUNS),
			processName(p.Labels), sparkline(sparks[i], peak))
	}
	tw.Flush()
}

// columns is how many sparkline columns steps fill: one per step up to
// the width.
func columns(steps int) int { return max(1, min(steps, timelineColumns)) }

// downsample sums per-step values into n columns.
func downsample(v []int64, n int) []int64 {
	out := make([]int64, n)
	for i, x := range v {
		out[i*n/len(v)] += x
	}
	return out
}

func sparkline(v []int64, peak int64) string {
	const bars = " ▁▂▃▄▅▆▇█"
	runes := []rune(bars)
	var b strings.Builder
	for _, x := range v {
		i := 0
		if x > 0 && peak > 0 {
			i = 1 + int(x*int64(len(runes)-2)/peak)
		}
		b.WriteRune(runes[i])
	}
	return strings.TrimRight(b.String(), " ")
}

func offCPU(byState map[string]int64) string {
	var parts []string
	for _, s := range []string{"blocked", "sleep", "preempted", "other"} {
		if v := byState[s]; v > 0 {
			parts = append(parts, s+" "+formatValue(v, "nanoseconds"))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// processName names a process by its service and, in Kubernetes, its pod.
func processName(ls map[string]string) string {
	name := ls["service"]
	if name == "" {
		name = ls["comm"]
	}
	if pod := ls["pod"]; pod != "" {
		name += " (pod " + pod + ")"
	}
	if name == "" {
		return "?"
	}
	return name
}

func printEvents(w io.Writer, tl *snapshots.Timeline) {
	if len(tl.Events) == 0 {
		fmt.Fprintln(w, "no process events")
		return
	}
	fmt.Fprintln(w, "events (time from the trigger):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, ev := range tl.Events {
		who := fmt.Sprintf("pid %d", ev.PID)
		if ev.TID != 0 && ev.TID != ev.PID {
			who += fmt.Sprintf(" tid %d", ev.TID)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", offset(ev.TimeNS-tl.Trigger.TimeNS), ev.Kind, who, ev.Comm, describeEvent(ev))
	}
	tw.Flush()
}

func describeEvent(ev snapshots.Event) string {
	switch ev.Kind {
	case "exec":
		return ev.Filename
	case "exit":
		if ev.ExitCode != nil {
			return fmt.Sprintf("exit code %d", *ev.ExitCode)
		}
		s := "killed by " + signalName(ev.Signal)
		if ev.CoreDumped {
			s += " (core dumped)"
		}
		return s
	case "signal":
		s := signalName(ev.Signal)
		if ev.Addr != 0 {
			s += fmt.Sprintf(" at address 0x%x", ev.Addr)
		}
		if len(ev.Frames) > 0 {
			s += " in " + strings.Join(ev.Frames[:min(len(ev.Frames), 3)], " < ")
		}
		return s
	case "oom_kill":
		return "killed by the OOM killer"
	}
	return ""
}

func signalName(n int) string { return fmt.Sprintf("signal %d (%s)", n, syscall.Signal(n)) }
