package ship

import (
	"bytes"
	"compress/gzip"
	"fmt"

	"github.com/google/pprof/profile"
)

// Encode writes p as the wire format wants it: gzipped pprof. It uses
// gzip's fastest level: a profile is sent once and compresses well at any
// level, so the default level's extra CPU buys the agent nothing.
func Encode(p *profile.Profile) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := p.WriteUncompressed(zw); err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress profile: %w", err)
	}
	return buf.Bytes(), nil
}
