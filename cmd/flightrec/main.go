// Command flightrec is the flightrec server and its command-line client:
// `flightrec server` stores and serves profiles; the other commands query it.
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
	"sort"
	"strings"
	"syscall"
)

// Exit codes shared by every command.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// command is one subcommand. run returns an exit code when it needs one
// other than 0/1/2 (e.g. diff's "regression" and "inconclusive").
type command struct {
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what commands print to.
type env struct {
	stdout, stderr io.Writer
}

// exitError carries a specific exit code.
type codeError struct {
	code int
	err  error
}

func (e codeError) Error() string { return e.err.Error() }
func (e codeError) Unwrap() error { return e.err }

// usageError marks errors in the invocation itself (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// commands is filled by each command's file in init-free style: see
// registerCommands.
func registerCommands() map[string]command {
	cmds := map[string]command{
		"server": {"run the server: ingest, store and serve profiles", runServer},
	}
	for name, c := range clientCommands() {
		cmds[name] = c
	}
	return cmds
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}

func usage(cmds map[string]command) string {
	var b strings.Builder
	b.WriteString("flightrec is the flightrec server and its command-line client.\n\nUsage:\n  flightrec COMMAND [flags]\n\nCommands:\n")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, cmds[n].summary)
	}
	b.WriteString("\nRun \"flightrec COMMAND -h\" for a command's flags.\n")
	return b.String()
}

func run(ctx context.Context, args []string, e *env) int {
	cmds := registerCommands()
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage(cmds))
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stdout, usage(cmds))
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "flightrec: unknown command %q\n\n%s", args[0], usage(cmds))
		return exitUsage
	}
	err := c.run(ctx, e, args[1:])
	var ce codeError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ce):
		if ce.err != nil && ce.err.Error() != "" {
			fmt.Fprintf(e.stderr, "flightrec %s: %v\n", args[0], ce.err)
		}
		return ce.code
	case errors.As(err, new(usageError)):
		fmt.Fprintf(e.stderr, "flightrec %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "flightrec %s: %v\n", args[0], err)
		return exitError
	}
}

// newFlagSet returns a flag set whose errors are usage errors.
func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("flightrec "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// (flightrec query SELECTOR --from -1h), and returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("bad --log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
