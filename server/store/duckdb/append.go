package duckdb

import (
	"context"
	"fmt"
	"regexp"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

// Append validates the whole batch, then has the writer commit it.
func (s *Store) Append(ctx context.Context, b *model.Batch) error {
	for i, p := range b.Profiles {
		if err := validate(p); err != nil {
			return fmt.Errorf("profile %d: %w", i, err)
		}
	}
	if len(b.Profiles) == 0 && b.Key == "" {
		return nil
	}
	return s.w.submit(ctx, &task{batch: b})
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func validate(p *model.Profile) error {
	if !metricName.MatchString(p.Type.Name) {
		return fmt.Errorf("profile type %q is not a valid name", p.Type.Name)
	}
	if p.Scale < 1 {
		return fmt.Errorf("scale %d must be at least 1", p.Scale)
	}
	if p.Time.IsZero() {
		return fmt.Errorf("profile has no time")
	}
	var err error
	p.Labels.Range(func(l labels.Label) {
		if err == nil && (l.Name == model.TypeLabel || !labelName.MatchString(l.Name) || l.Value == "") {
			err = fmt.Errorf("invalid series label %s=%q", l.Name, l.Value)
		}
	})
	if err != nil {
		return err
	}
	if err := p.Stacks.Validate(); err != nil {
		return err
	}
	for _, v := range p.Stacks.Values {
		if v < 0 {
			return fmt.Errorf("negative value %d", v)
		}
	}
	return nil
}
