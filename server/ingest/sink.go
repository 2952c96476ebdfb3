// Package ingest receives profiles over HTTP in every supported format
// (agent, pprof upload, Pyroscope), decodes them within limits into model
// batches and hands each to a Sink, acknowledging only what the Sink stored.
package ingest

import (
	"context"

	"github.com/flightrec/flightrec/server/model"
)

// Sink stores a batch whole and durably, or returns an error and stores
// nothing. The store is the production Sink.
//
// The batch lives in the handler's pooled memory (its frame strings are
// bytes of the request), reused for another request once Append returns:
// a Sink copies what it keeps, as model.Batch says.
type Sink interface {
	Append(ctx context.Context, b *model.Batch) error
}

// Expecter is implemented by Sinks that commit concurrent Appends together
// (the store): the handler announces each request while it is decoded,
// until its Append or Stage, so that the Sink waits for it instead of
// committing without it. done is called once: when Append or Stage is
// called, or when neither will be.
type Expecter interface {
	Expect() (done func())
}

// Stager is implemented by Sinks that can take a batch in two steps, as
// the store does: Stage copies what the Sink keeps of b and queues it,
// and wait blocks until the batch is stored whole, or not at all. The
// handler frees the request's memory and its decoding slot in between,
// so that requests waiting for a commit hold neither. Without an error
// from Stage, wait must be called once.
type Stager interface {
	Stage(ctx context.Context, b *model.Batch) (wait func() error, err error)
}
