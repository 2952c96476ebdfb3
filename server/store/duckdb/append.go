package duckdb

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/model"
)

// Append validates the whole batch, maps it to dictionary ids in the
// caller's goroutine (so that ingest scales with cores, not with the one
// writer), then has the writer commit its rows. The batch's strings may
// alias the caller's buffers: they are copied only into new entries.
func (s *Store) Append(ctx context.Context, b *model.Batch) error {
	wait, err := s.Stage(ctx, b)
	if err != nil {
		return err
	}
	return wait()
}

// Stage is the first half of Append: it maps b to dictionary ids, copying
// what is new, and queues the batch for the writer; b is not used once
// Stage returns. wait, called once, blocks until the batch is committed
// or has failed, or ctx ends (the outcome is then unknown, as for Append).
// Ingest frees a request's memory in between (ingest.Stager).
func (s *Store) Stage(ctx context.Context, b *model.Batch) (wait func() error, err error) {
	arrived := s.w.expect()
	defer arrived()
	for i, p := range b.Profiles {
		if err := validate(p); err != nil {
			return nil, fmt.Errorf("profile %d: %w", i, err)
		}
	}
	if len(b.Profiles) == 0 && b.Key == "" {
		return func() error { return nil }, nil
	}
	pb := &preparedBatch{key: strings.Clone(b.Key), profiles: make([]prepared, len(b.Profiles))}
	var r internRun
	for i, p := range b.Profiles {
		pb.profiles[i] = s.prepare(&r, p)
	}
	t := &task{batch: pb}
	if err := s.w.enqueue(ctx, t, arrived); err != nil {
		return nil, err
	}
	return func() error { return s.w.wait(ctx, t) }, nil
}

// Expect announces an Append that a caller is about to make (an ingest
// request being decoded), so that the writer commits it with the batches
// it is collecting rather than alone; done is called once, when the
// Append starts or when it will not come. Unannounced Appends work too.
func (s *Store) Expect() (done func()) { return s.w.expect() }

func (s *Store) prepare(r *internRun, p *model.Profile) prepared {
	got := s.dict.intern(r, p)
	stacks, values := sortedStacks(got.stacks, p.Stacks.Values)
	var total int64
	for _, v := range values {
		total += v
	}
	ms := p.Time.UnixMilli()
	return prepared{
		typeID: got.typeID, series: got.series,
		ts: floorTo(ms, 1000) / 1000, tsMS: ms, durMS: p.Duration.Milliseconds(), scale: p.Scale,
		packed: appendPacked(nil, stacks, values), n: len(stacks), total: total,
	}
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

// Commits returns how many write transactions committed batches so far,
// and how many batches they held: the size of commit groups.
func (s *Store) Commits() (transactions, batches int64) {
	return s.w.commits.Load(), s.w.committed.Load()
}
