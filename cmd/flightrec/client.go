package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/client"
	"github.com/flightrec/flightrec/server/query"
)

// clientCommands are the commands that talk to a server over HTTP.
func clientCommands() map[string]command {
	return map[string]command{
		"query":  {"download the merged profile of a selector as pprof", runQuery},
		"top":    {"show the functions a selector's profiles spend most in", runTop},
		"labels": {"list label names, or the values of one label", runLabels},
		"upload": {"send a pprof file to the server", runUpload},
		"diff":   {"compare a target's functions with a baseline's across instances (a CD gate)", runDiff},

		// Cohorts and deploys of one function (docs/diff.md).
		"explain": {"find the cohort (version, node, zone) whose share of a function differs", runExplain},
		"bisect":  {"find the version at which a function's share changed", runBisect},

		// The flight recorder (docs/triggers.md, docs/snapshot.md).
		"trigger":   {"ask agents for a flight-recorder snapshot of what a selector matches", runTrigger},
		"snapshots": {"list flight-recorder snapshots", runSnapshots},
		"snapshot":  {"download a snapshot, a pprof cut from it, or its timeline", runSnapshot},
	}
}

const defaultServer = "http://127.0.0.1:7070"

// serverFlags say how to reach the server: every client command has them.
type serverFlags struct {
	server    string
	tokenFile string
	timeout   time.Duration
}

func (f *serverFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("FLIGHTREC_SERVER")
	if def == "" {
		def = defaultServer
	}
	fs.StringVar(&f.server, "server", def, "server `URL` ($FLIGHTREC_SERVER overrides the default)")
	fs.StringVar(&f.tokenFile, "token-file", "", "read the bearer token to send from `FILE`")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up on the server after this long")
}

// client returns a client of the server: a bad URL or token file is the
// invocation's fault.
func (f *serverFlags) client() (*client.Client, error) {
	c, err := client.New(f.server)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	c.HTTP = &http.Client{Timeout: f.timeout}
	c.UserAgent = "flightrec-cli"
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, usagef("--token-file: %v", err)
		}
		if c.Token = strings.TrimSpace(string(b)); c.Token == "" {
			return nil, usagef("--token-file: %s is empty", f.tokenFile)
		}
	}
	return c, nil
}

// rangeFlags say what to read.
type rangeFlags struct {
	from, to, typ string
}

func (f *rangeFlags) register(fs *flag.FlagSet, defaultType, typeHelp string) {
	fs.StringVar(&f.from, "from", "-1h", "start `time`: RFC 3339, Unix seconds, -1h, now-30m, ...")
	fs.StringVar(&f.to, "to", "now", "end `time`")
	fs.StringVar(&f.typ, "type", defaultType, typeHelp)
}

// check rejects malformed times before asking the server; the server
// evaluates relative times itself, by its clock.
func (f *rangeFlags) check() error {
	now := time.Now()
	for _, t := range []struct{ flag, value string }{{"from", f.from}, {"to", f.to}} {
		if _, err := query.ParseTime(t.value, now); err != nil {
			return usagef("--%s: %v", t.flag, err)
		}
	}
	return nil
}

// selectorArg returns the one positional argument, a valid selector.
func selectorArg(pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return "", usagef(`missing SELECTOR, e.g. 'cpu{service="api"}'`)
	case 1:
	default:
		return "", usagef("want one SELECTOR, got %d arguments: %s (quote the selector)", len(pos), strings.Join(pos, " "))
	}
	if _, err := query.ParseSelector(pos[0]); err != nil {
		return "", usageError{err}
	}
	return pos[0], nil
}

// setUsage makes -h print the synopsis before the flags.
func setUsage(fs *flag.FlagSet, e *env, synopsis string) {
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
}

// isUsage reports whether err is the invocation's fault.
func isUsage(err error) bool { return errors.As(err, new(usageError)) }

// formatValue prints v in unit the way pprof does: 150ms, 1.5s, 2.5MB.
func formatValue(v int64, unit string) string {
	type scale struct {
		name string
		size float64
	}
	var scales []scale
	switch unit {
	case "nanoseconds":
		scales = []scale{{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"min", 60e9}, {"h", 3600e9}}
	case "bytes":
		scales = []scale{{"B", 1}, {"kB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}}
	default:
		return strconv.FormatInt(v, 10)
	}
	if v == 0 {
		return "0"
	}
	s := scales[0]
	for _, c := range scales[1:] {
		if float64(abs(v)) >= c.size {
			s = c
		}
	}
	num := strconv.FormatFloat(float64(v)/s.size, 'f', 2, 64)
	num = strings.TrimRight(strings.TrimRight(num, "0"), ".")
	return num + s.name
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// percent prints v's share of total as pprof does: 53.57%, 100%, 0%.
func percent(v, total int64) string {
	if total == 0 || v == 0 {
		return "0%"
	}
	if v == total {
		return "100%"
	}
	return strconv.FormatFloat(100*float64(v)/float64(total), 'f', 2, 64) + "%"
}
