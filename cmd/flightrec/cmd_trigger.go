package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/query"
	"github.com/flightrec/flightrec/server/triggers"
)

func runTrigger(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("trigger", e)
	setUsage(fs, e, "flightrec trigger --selector SELECTOR --reason TEXT [--before 60s] [--after 10s]\n\n"+
		"Asks the agents of the nodes running what SELECTOR matches (per their profiles\n"+
		"of the last 5 minutes) to take a flight-recorder snapshot of the window\n"+
		"around now. Needs a token of scope ingest when the server checks tokens.")
	var sf serverFlags
	sf.register(fs)
	sel := fs.String("selector", "", "what to capture, e.g. '{service=\"api\"}'")
	reason := fs.String("reason", "", "why, for whoever reads the snapshot")
	before := fs.Duration("before", 60*time.Second, "window before now (at most 10m)")
	after := fs.Duration("after", 10*time.Second, "window after now (at most 10m)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	req, err := manualRequest(pos, *sel, *reason, *before, *after)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(req)
	data, _, err := sf.call(ctx, apiRequest{method: http.MethodPost, path: triggers.ManualPath, body: body})
	if err != nil {
		return err
	}
	var res triggers.Result
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("POST %s: decode answer: %w", triggers.ManualPath, err)
	}
	if res.Outcome != triggers.Fired {
		return fmt.Errorf("no snapshot: %s: %s", res.Outcome, res.Message)
	}
	fmt.Fprintf(e.stdout, "trigger %s sent to %s\n", res.ID, strings.Join(res.Nodes, ", "))
	if len(res.NotPolling) > 0 {
		fmt.Fprintf(e.stderr, "warning: no agent of %s polled the server lately: they get the trigger only if one connects within 2 minutes\n",
			strings.Join(res.NotPolling, ", "))
	}
	return nil
}

// manualRequest checks the invocation before asking the server.
func manualRequest(pos []string, sel, reason string, before, after time.Duration) (triggers.ManualRequest, error) {
	switch {
	case len(pos) > 0:
		return triggers.ManualRequest{}, usagef("unexpected argument %q (the selector goes in --selector)", pos[0])
	case sel == "":
		return triggers.ManualRequest{}, usagef(`missing --selector, e.g. '{service="api"}'`)
	case strings.TrimSpace(reason) == "":
		return triggers.ManualRequest{}, usagef("missing --reason: say why, for whoever reads the snapshot")
	}
	if _, err := query.ParseSelector(sel); err != nil {
		return triggers.ManualRequest{}, usagef("--selector: %v", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"before", before}, {"after", after}} {
		if d.v <= 0 || d.v > 10*time.Minute {
			return triggers.ManualRequest{}, usagef("--%s %v: want a duration from 1ms to 10m", d.name, d.v)
		}
	}
	return triggers.ManualRequest{Selector: sel, Reason: reason, BeforeS: before.Seconds(), AfterS: after.Seconds()}, nil
}

// triggerConfig checks the server's trigger flags.
func triggerConfig(alertLabels string, cooldown time.Duration, rate string) (triggers.Config, error) {
	mapping, err := triggers.ParseLabelMappings(alertLabels)
	if err != nil {
		return triggers.Config{}, usagef("--alert-labels: %v", err)
	}
	n, per, err := triggers.ParseRate(rate)
	if err != nil {
		return triggers.Config{}, usagef("--trigger-rate-limit: %v", err)
	}
	if cooldown <= 0 {
		return triggers.Config{}, usageError{errors.New("--alert-cooldown: must be positive")}
	}
	return triggers.Config{AlertLabels: mapping, AlertCooldown: cooldown, RateLimit: n, RateWindow: per}, nil
}
