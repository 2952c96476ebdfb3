package pprofconv

import (
	"errors"
	"fmt"
)

// Kinds of failure, for errors.Is: HTTP handlers map them to statuses.
// Messages never mention the kind; they say what is wrong with the input.
var (
	ErrTooLarge    = errors.New("too large")              // over a size or count limit
	ErrGzip        = errors.New("bad gzip")               // corrupt or truncated gzip
	ErrZstd        = errors.New("bad zstd")               // corrupt or truncated zstd
	ErrMalformed   = errors.New("malformed profile")      // not a valid pprof profile
	ErrBadLabels   = errors.New("bad labels")             // label names or values unacceptable
	ErrUnsupported = errors.New("unsupported input kind") // valid, but not a format we read
)

// Errorf formats an error of the given kind (one of the Err variables).
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}

type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// FormatBytes formats a byte count for messages: "256 MiB", "1500 bytes".
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
