package pprofconv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"

	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/gzip"
)

// maxLayers allows a compressed pprof file (gzip, as pprof writes it) sent
// with Content-Encoding gzip or zstd; more nesting than that is no
// legitimate client's doing.
const maxLayers = 2

// IsGzip reports whether data starts with the gzip magic. No pprof protobuf
// does: 0x1f would be field 3 with the invalid wire type 7.
func IsGzip(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
}

// IsZstd reports whether data starts with the zstd frame magic. No pprof
// protobuf does: 0x28 would be field 5 (function, a message) as a varint.
func IsZstd(data []byte) bool {
	return len(data) >= 4 && data[0] == 0x28 && data[1] == 0xb5 && data[2] == 0x2f && data[3] == 0xfd
}

// Inflate returns data decompressed if it is gzip or zstd (up to two nested
// layers), else data itself. It stops decompressing past limit bytes, so a
// gzip or zstd bomb costs at most limit bytes of memory, and fails with
// ErrTooLarge.
func Inflate(data []byte, limit int64) ([]byte, error) {
	var bufs [maxLayers]bytes.Buffer
	return inflate(&bufs, data, limit)
}

// inflate is Inflate into bufs, one per layer.
func inflate(bufs *[maxLayers]bytes.Buffer, data []byte, limit int64) ([]byte, error) {
	for i := range maxLayers {
		var err error
		switch {
		case IsGzip(data):
			err = gunzip(&bufs[i], data, limit)
		case IsZstd(data):
			err = unzstd(&bufs[i], data, limit)
		default:
			return within(data, limit)
		}
		if err != nil {
			return nil, err
		}
		data = bufs[i].Bytes()
	}
	return within(data, limit)
}

// within returns data if it is at most limit bytes.
func within(data []byte, limit int64) ([]byte, error) {
	if int64(len(data)) > limit {
		return nil, Errorf(ErrTooLarge, "decompressed body exceeds %s", FormatBytes(limit))
	}
	return data, nil
}

// gzipReaders are klauspost's gzip readers (inflating about twice as fast
// as compress/gzip), pooled: each holds a 32 KiB window and tables.
var gzipReaders sync.Pool

// gunzip inflates data into out, which it resets.
func gunzip(out *bytes.Buffer, data []byte, limit int64) error {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	if zr == nil {
		zr = new(gzip.Reader)
	}
	defer gzipReaders.Put(zr)
	if err := zr.Reset(bytes.NewReader(data)); err != nil {
		return gzipError(err)
	}
	out.Reset()
	out.Grow(int(sizeHint(data, limit)) + bytes.MinRead) // MinRead: room to read EOF without growing
	// One byte more than allowed tells "exactly limit" from "more than limit".
	n, err := out.ReadFrom(io.LimitReader(zr, limit+1))
	if err != nil {
		return gzipError(err)
	}
	if n > limit {
		return Errorf(ErrTooLarge, "decompressed body exceeds %s", FormatBytes(limit))
	}
	return nil
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
	if err := checkRaw(data); err != nil {
		return nil, err
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

// checkRaw rejects what is not worth parsing.
func checkRaw(data []byte) error {
	if len(data) == 0 {
		return Errorf(ErrMalformed, "parse pprof: empty profile")
	}
	if IsGzip(data) || IsZstd(data) {
		return Errorf(ErrMalformed, "parse pprof: still compressed after %d layers of gzip or zstd", maxLayers)
	}
	return nil
}

// Decode inflates (within limit bytes) and parses a pprof profile.
func Decode(data []byte, limit int64) (*profile.Profile, error) {
	raw, err := Inflate(data, limit)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}
