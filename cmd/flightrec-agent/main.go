// Command flightrec-agent profiles every process on this node with eBPF:
// `record` writes a pprof file, `run` ships profiles to a flightrec server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks errors that are the user's invocation, not the system.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

const usage = `flightrec-agent profiles every process on this node with eBPF.

Usage:
  flightrec-agent record [--duration 30s] [--pid PID] [--frequency 99] [-o cpu.pb.gz]
  flightrec-agent run --server URL [--frequency 19] [--interval 10s] [--admin 127.0.0.1:7071]
  flightrec-agent version

Run "flightrec-agent COMMAND -h" for a command's flags.
`

// defaultCacheDir holds what the agent keeps across restarts on a node.
const defaultCacheDir = "/var/cache/flightrec-agent"

// memoryLimit is a soft cap on the Go runtime's memory: the agent's heap is
// ~15 MiB in steady state, and the cap makes the collector reclaim the
// transient garbage of a first report or a burst of new processes before it
// grows the heap. `run` raises it while the live heap needs more (see
// adaptMemoryLimit). GOMEMLIMIT overrides it.
const memoryLimit = 32 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "record":
		err = record(ctx, args[1:], stdout, stderr)
	case "run":
		err = runAgent(ctx, args[1:], stderr)
	case "version":
		fmt.Fprintln(stdout, version())
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "flightrec-agent: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "flightrec-agent %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "flightrec-agent %s: %v\n", args[0], err)
		return exitError
	}
}

// newFlagSet returns a flag set whose parse errors are usage errors.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func newLogger(stderr io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("bad --log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: l})), nil
}
