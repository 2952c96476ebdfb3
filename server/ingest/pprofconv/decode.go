package pprofconv

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"

	"github.com/google/pprof/profile"
)

// maxGzipLayers allows a gzipped pprof file sent with Content-Encoding gzip;
// more nesting than that is no legitimate client's doing.
const maxGzipLayers = 2

// IsGzip reports whether data starts with the gzip magic. No pprof protobuf
// does: 0x1f would be field 3 with the invalid wire type 7.
func IsGzip(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
}

// Inflate returns data decompressed if it is gzip (up to two nested layers),
// else data itself. It stops inflating past limit bytes, so a gzip bomb costs
// at most limit bytes of memory, and fails with ErrTooLarge.
func Inflate(data []byte, limit int64) ([]byte, error) {
	for range maxGzipLayers {
		if !IsGzip(data) {
			break
		}
		var err error
		if data, err = gunzip(data, limit); err != nil {
			return nil, err
		}
	}
	if int64(len(data)) > limit {
		return nil, Errorf(ErrTooLarge, "decompressed body exceeds %s", FormatBytes(limit))
	}
	return data, nil
}

func gunzip(data []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, gzipError(err)
	}
	var out bytes.Buffer
	out.Grow(int(sizeHint(data, limit)))
	// One byte more than allowed tells "exactly limit" from "more than limit".
	n, err := out.ReadFrom(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, gzipError(err)
	}
	if n > limit {
		return nil, Errorf(ErrTooLarge, "decompressed body exceeds %s", FormatBytes(limit))
	}
	return out.Bytes(), nil
}

// maxDeflateRatio is the most deflate can compress (258-byte matches in
// about two bits each).
const maxDeflateRatio = 1032

// sizeHint guesses the inflated size from the gzip trailer (ISIZE, the
// size mod 2³²), so that the buffer is allocated once. The trailer is the
// sender's word: the guess is capped by what deflate can reach and by
// limit, and the real size still decides.
func sizeHint(data []byte, limit int64) int64 {
	isize := int64(binary.LittleEndian.Uint32(data[len(data)-4:])) // gzip data is at least 10 bytes
	return min(isize, int64(len(data))*maxDeflateRatio, limit) + 1
}

func gzipError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return Errorf(ErrGzip, "truncated gzip: %v", io.ErrUnexpectedEOF)
	}
	return Errorf(ErrGzip, "bad gzip: %v", err)
}

// Parse parses an uncompressed pprof protobuf and checks its consistency.
// Unlike profile.Parse it neither inflates (use Inflate, which is bounded)
// nor falls back to legacy text formats.
func Parse(data []byte) (p *profile.Profile, err error) {
	if len(data) == 0 {
		return nil, Errorf(ErrMalformed, "parse pprof: empty profile")
	}
	if IsGzip(data) {
		return nil, Errorf(ErrMalformed, "parse pprof: still gzip-compressed after %d layers", maxGzipLayers)
	}
	// The decoder trusts indexes in its input; a bug there must cost one
	// request, not the server.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, Errorf(ErrMalformed, "parse pprof: %v", r)
		}
	}()
	p, err = profile.ParseUncompressed(data)
	if err != nil {
		return nil, Errorf(ErrMalformed, "parse pprof: %w", err)
	}
	if err := p.CheckValid(); err != nil {
		return nil, Errorf(ErrMalformed, "invalid pprof: %w", err)
	}
	return p, nil
}

// Decode inflates (within limit bytes) and parses a pprof profile.
func Decode(data []byte, limit int64) (*profile.Profile, error) {
	raw, err := Inflate(data, limit)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}
