package triggers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flightrec/flightrec/server/query"
)

// ManualRequest is POST /api/v1/triggers's body.
type ManualRequest struct {
	Selector string  `json:"selector"`
	Reason   string  `json:"reason"`
	BeforeS  float64 `json:"before_s,omitempty"` // 0: the default, 60
	AfterS   float64 `json:"after_s,omitempty"`  // 0: the default, 10
}

// Bounds of a manual request, as the agent's admin endpoint has them.
const (
	maxWindowSide = 10 * time.Minute
	maxReason     = 1024
)

// ErrInvalid marks requests the caller must fix.
var ErrInvalid = errors.New("invalid trigger")

// Manual fires a manual trigger for the nodes req's selector matches.
func (s *Service) Manual(ctx context.Context, req ManualRequest) (Result, error) {
	t, sel, err := s.manualTrigger(req)
	if err != nil {
		return Result{}, err
	}
	return s.fire(ctx, t, sel, s.admitRate)
}

func (s *Service) manualTrigger(req ManualRequest) (Trigger, query.Selector, error) {
	sel, err := query.ParseSelector(req.Selector)
	if err != nil {
		return Trigger{}, sel, fmt.Errorf("%w: selector: %v", ErrInvalid, err)
	}
	reason := strings.TrimSpace(req.Reason)
	switch {
	case reason == "":
		return Trigger{}, sel, fmt.Errorf("%w: no reason: say why, for whoever reads the snapshot", ErrInvalid)
	case len(reason) > maxReason:
		return Trigger{}, sel, fmt.Errorf("%w: reason of %d bytes, limit %d", ErrInvalid, len(reason), maxReason)
	}
	t := Trigger{Kind: KindManual, Reason: reason, Selector: req.Selector, BeforeS: req.BeforeS, AfterS: req.AfterS}
	for _, side := range []struct {
		name string
		v    *float64
		def  time.Duration
	}{{"before_s", &t.BeforeS, s.cfg.Before}, {"after_s", &t.AfterS, s.cfg.After}} {
		switch {
		case *side.v == 0:
			*side.v = seconds(side.def)
		case *side.v < 0 || *side.v > maxWindowSide.Seconds():
			return Trigger{}, sel, fmt.Errorf("%w: %s %g: want 0 (the default) to %g", ErrInvalid, side.name, *side.v, maxWindowSide.Seconds())
		}
	}
	return t, sel, nil
}
