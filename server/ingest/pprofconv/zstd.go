package pprofconv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// maxZstdWindow bounds the history a zstd frame may ask the decoder to
// keep: the largest window of zstd's standard levels (1 to 19, windowLog
// 23). A frame asking for more (--ultra, --long) is refused, so a hostile
// header cannot make each request hold hundreds of MiB.
const maxZstdWindow = 8 << 20

// zstdReaders are zstd decoders, pooled: each holds up to a window of
// history and its tables. They decode synchronously (concurrency 1), so a
// decoder runs no goroutine and the pool may drop one without Close.
var zstdReaders sync.Pool

func newZstdReader() (*zstd.Decoder, error) {
	zr, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow),
	)
	if err != nil {
		return nil, fmt.Errorf("new zstd decoder: %w", err)
	}
	return zr, nil
}

// unzstd decompresses data, one zstd frame or several concatenated, into
// out, which it resets. Like gunzip it reads at most limit+1 bytes, so a
// bomb costs limit bytes of memory and fails with ErrTooLarge.
func unzstd(out *bytes.Buffer, data []byte, limit int64) error {
	zr, _ := zstdReaders.Get().(*zstd.Decoder)
	if zr == nil {
		var err error
		if zr, err = newZstdReader(); err != nil {
			return err // options are constants: a bug, not the input
		}
	}
	defer func() {
		_ = zr.Reset(nil) // drops data, which belongs to the request; never fails on nil
		zstdReaders.Put(zr)
	}()
	if err := checkWindow(data); err != nil {
		return err
	}
	if err := zr.Reset(bytes.NewReader(data)); err != nil {
		return zstdError(err)
	}
	out.Reset()
	out.Grow(int(zstdSizeHint(data, limit)) + bytes.MinRead) // MinRead: room to read EOF without growing
	// One byte more than allowed tells "exactly limit" from "more than limit".
	n, err := out.ReadFrom(io.LimitReader(zr, limit+1))
	if err != nil {
		return zstdError(err)
	}
	if n > limit {
		return Errorf(ErrTooLarge, "decompressed body exceeds %s", FormatBytes(limit))
	}
	return nil
}

// maxZstdHintRatio caps the size guessed from a frame header: the header
// is the sender's word, and a few bytes of RLE block can claim 128 KiB.
const maxZstdHintRatio = 16

// zstdSizeHint guesses the decompressed size from the first frame's
// content size, when it declares one, so that the buffer is allocated
// once; the real size still decides.
func zstdSizeHint(data []byte, limit int64) int64 {
	guess := int64(len(data)) * 4 // a pprof protobuf compresses about 3:1
	var h zstd.Header
	if h.Decode(data) == nil && h.HasFCS && h.FrameContentSize <= uint64(limit) {
		guess = int64(h.FrameContentSize)
	}
	return min(guess, int64(len(data))*maxZstdHintRatio, limit) + 1
}

// checkWindow refuses, as too large, a first frame that asks for a window
// over maxZstdWindow (a single-segment frame's window is its content
// size). The decoder refuses later ones too, but its error cannot be told
// from a corrupt block's (ErrWindowSizeExceeded is both).
func checkWindow(data []byte) error {
	var h zstd.Header
	if h.Decode(data) != nil {
		return nil // the decoder says what is wrong
	}
	window := h.WindowSize
	if h.SingleSegment {
		window = h.FrameContentSize
	}
	if window > maxZstdWindow {
		return Errorf(ErrTooLarge, "zstd frame needs a window of %s, over %s", FormatBytes(int64(min(window, 1<<62))), FormatBytes(maxZstdWindow))
	}
	return nil
}

func zstdError(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return Errorf(ErrZstd, "truncated zstd: %v", io.ErrUnexpectedEOF)
	case errors.Is(err, zstd.ErrDecoderSizeExceeded): // streaming, only a window over the limit
		return Errorf(ErrTooLarge, "zstd frame needs a window over %s", FormatBytes(maxZstdWindow))
	}
	return Errorf(ErrZstd, "bad zstd: %v", err)
}
