package pprofconv

import (
	"bytes"
	"errors"
	"sync"

	"github.com/flightrec/flightrec/server/model"
)

// Scratch is the memory of one conversion: the inflated protobuf, its
// decoded tables, the converter's state and the converted profiles. The
// profiles alias it (their frame and type strings are bytes of the
// protobuf), so they are valid until Release, which hands the memory to
// the next request: an ingest handler releases after Sink.Append, whose
// contract (model.Batch) is to copy what it keeps. A Scratch is for one
// goroutine at a time.
type Scratch struct {
	inflated [maxLayers]bytes.Buffer
	raw      []byte // the protobuf: in inflated, or the caller's data
	decoded  bool   // Decode succeeded: c.t holds a profile to convert
	c        converter
}

var scratches = sync.Pool{New: func() any { return new(Scratch) }}

// maxPooled bounds the protobuf size whose Scratch goes back to the pool:
// a rare huge request must not pin its memory for good.
const maxPooled = 4 << 20

// NewScratch returns an empty Scratch, reusing a released one's memory.
func NewScratch() *Scratch { return scratches.Get().(*Scratch) }

// Release makes s's memory, and so the profiles converted in it, available
// to the next NewScratch. s must not be used afterwards.
func (s *Scratch) Release() {
	large := len(s.raw) > maxPooled || s.inflated[0].Cap() > maxPooled || s.inflated[1].Cap() > maxPooled
	s.raw, s.decoded = nil, false
	s.c.reset()
	if !large {
		scratches.Put(s)
	}
}

// Decode inflates data (gzip or zstd, within limit bytes, as Inflate) and decodes
// the pprof profile, checking its consistency as Parse does; s keeps it
// for Convert. When data is not compressed the profile aliases it: data
// must not change until Release.
func (s *Scratch) Decode(data []byte, limit int64) (err error) {
	s.decoded = false
	s.c.reset()
	if s.raw, err = inflate(&s.inflated, data, limit); err != nil {
		return err
	}
	if err := checkRaw(s.raw); err != nil {
		return err
	}
	// A bug in the decoder must cost one request, not the server.
	defer func() {
		if r := recover(); r != nil {
			err = Errorf(ErrMalformed, "parse pprof: %v", r)
		}
	}()
	if err := decodeWire(s.raw, &s.c.t); err != nil {
		return Errorf(ErrMalformed, "parse pprof: %w", err)
	}
	if err := s.c.t.resolve(); err != nil {
		return Errorf(ErrMalformed, "invalid pprof: %w", err)
	}
	s.decoded = true
	return nil
}

// Convert converts the profile Decode decoded, as Convert does, once. The
// profiles are valid until Release.
func (s *Scratch) Convert(opt Options) ([]*model.Profile, Stats, error) {
	if !s.decoded {
		return nil, Stats{}, errors.New("pprofconv: Scratch.Convert without a profile decoded")
	}
	s.decoded = false
	return s.c.convert(opt)
}
