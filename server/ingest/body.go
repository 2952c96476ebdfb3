package ingest

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
)

// Limits bound what one request may cost. A zero field takes its default.
type Limits struct {
	MaxBodyBytes         int64 // request body as sent (compressed); default 32 MiB
	MaxDecompressedBytes int64 // body after gzip or zstd, all profiles of a request together; default 256 MiB
	Profile              pprofconv.Limits
}

// Default limits.
const (
	DefaultMaxBodyBytes         = 32 << 20
	DefaultMaxDecompressedBytes = 256 << 20
	maxIdempotencyKey           = 256
)

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxDecompressedBytes <= 0 {
		l.MaxDecompressedBytes = DefaultMaxDecompressedBytes
	}
	return l
}

// Request-level error kinds, besides pprofconv's.
var (
	errBadRequest = errors.New("bad request") // query or headers
	errRead       = errors.New("read error")  // the body did not arrive
)

// bodies are request body buffers, pooled: a body is a request's largest
// allocation but for its inflated form (pprofconv.Scratch's).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody bounds the bodies that go back to the pool, so that a rare
// large one does not stay in memory.
const maxPooledBody = 4 << 20

func releaseBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		b.Reset()
		bodies.Put(b)
	}
}

// readBody reads the request body into buf, at most limit bytes.
// Decompression is left to pprofconv, which sniffs gzip and zstd whatever
// the headers say: Content-Encoding is only checked for something we
// cannot decode, and against the body it announces.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, buf *bytes.Buffer) ([]byte, error) {
	enc, err := contentEncoding(r.Header.Get("Content-Encoding"))
	if err != nil {
		return nil, err
	}
	if r.ContentLength > limit {
		return nil, pprofconv.Errorf(pprofconv.ErrTooLarge, "request body of %d bytes exceeds %s", r.ContentLength, pprofconv.FormatBytes(limit))
	}
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // MinRead: room to read EOF without growing
	}
	_, err = buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, pprofconv.Errorf(pprofconv.ErrTooLarge, "request body exceeds %s", pprofconv.FormatBytes(limit))
	case err != nil:
		return nil, pprofconv.Errorf(errRead, "read request body: %w", err)
	case enc == encGzip && !pprofconv.IsGzip(buf.Bytes()):
		return nil, pprofconv.Errorf(pprofconv.ErrGzip, "bad gzip: Content-Encoding is gzip but the body is not")
	case enc == encZstd && !pprofconv.IsZstd(buf.Bytes()):
		return nil, pprofconv.Errorf(pprofconv.ErrZstd, "bad zstd: Content-Encoding is zstd but the body is not")
	}
	return buf.Bytes(), nil
}

// encoding is a request body's Content-Encoding.
type encoding int

const (
	encIdentity encoding = iota
	encGzip
	encZstd
)

func contentEncoding(enc string) (encoding, error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return encIdentity, nil
	case "gzip", "x-gzip":
		return encGzip, nil
	case "zstd":
		return encZstd, nil
	}
	return encIdentity, pprofconv.Errorf(pprofconv.ErrUnsupported, "Content-Encoding %q is not supported: send zstd, gzip or no encoding", enc)
}

// query parses the query strictly: r.URL.Query() would drop bad escapes.
// Parameters not in allowed, and repeated ones, are errors: a misspelt
// parameter silently ignored would store data under the wrong series.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, pprofconv.Errorf(errBadRequest, "query: %w", err)
	}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	slices.Sort(names) // the same message for the same request
	for _, k := range names {
		if !slices.Contains(allowed, k) {
			return nil, pprofconv.Errorf(errBadRequest, "unknown parameter %q", k)
		}
		if n := len(q[k]); n > 1 {
			return nil, pprofconv.Errorf(errBadRequest, "parameter %q given %d times", k, n)
		}
	}
	return q, nil
}

// idempotencyKey returns the Idempotency-Key header ("" if absent).
func idempotencyKey(r *http.Request) (string, error) {
	k := r.Header.Get("Idempotency-Key")
	if len(k) > maxIdempotencyKey {
		return "", pprofconv.Errorf(errBadRequest, "Idempotency-Key is longer than %d bytes", maxIdempotencyKey)
	}
	return k, nil
}
