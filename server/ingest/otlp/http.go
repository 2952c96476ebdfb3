package otlp

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// HTTPPath is where OTLP/HTTP exporters send profiles by default.
const HTTPPath = "/v1development/profiles"

// NewHTTPHandler serves OTLP/HTTP profile exports (POST, mounted at HTTPPath
// by the caller): protobuf or JSON bodies, optionally gzip-compressed. It
// answers 200 with an ExportProfilesServiceResponse once the sink stored the
// whole request, else a google.rpc.Status naming the problem: 400 malformed
// or invalid (not retryable), 413 too large or over the Limits, 415
// unsupported content type or encoding, 503 the sink failed (retryable).
// Requests are stored whole or not at all, so partial_success is never used.
func NewHTTPHandler(sink Sink, opts ...Option) http.Handler {
	return &httpHandler{receiver: newReceiver(sink, FormatHTTP, opts)}
}

type httpHandler struct {
	*receiver
}

// codec is a supported request body format; responses use the request's.
type codec struct {
	contentType string
	unmarshal   func([]byte, proto.Message) error
	marshal     func(proto.Message) ([]byte, error)
}

func protobufCodec() *codec {
	return &codec{"application/x-protobuf", proto.Unmarshal, proto.Marshal}
}

// codecFor returns the codec for a Content-Type, or nil if unsupported.
func codecFor(contentType string) *codec {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		return protobufCodec()
	case "application/json":
		return &codec{"application/json", protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal, protojson.Marshal}
	}
	return nil
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.cfg.metrics.request(h.format)
	c := codecFor(r.Header.Get("Content-Type"))
	if err := h.serve(w, r, c); err != nil {
		h.writeError(w, c, err)
		return
	}
	writeMessage(w, c, http.StatusOK, &collectorpb.ExportProfilesServiceResponse{})
}

func (h *httpHandler) serve(w http.ResponseWriter, r *http.Request, c *codec) error {
	if r.Method != http.MethodPost {
		return h.reject(failMethod, fmt.Errorf("method %s not allowed: use POST", r.Method))
	}
	if c == nil {
		return h.reject(failUnsupported, fmt.Errorf("content type %q not supported: use application/x-protobuf or application/json", r.Header.Get("Content-Type")))
	}
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	req := &collectorpb.ExportProfilesServiceRequest{}
	if err := c.unmarshal(body, req); err != nil {
		return h.reject(failMalformed, fmt.Errorf("decoding %s ExportProfilesServiceRequest: %w", c.contentType, err))
	}
	return h.export(r.Context(), req, r.Header.Get("Idempotency-Key"))
}

// readBody reads the body within the limits, decompressing it if need be.
func (h *httpHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > h.cfg.maxBody {
		return nil, h.reject(failTooLarge, fmt.Errorf("body of %d bytes exceeds the limit of %d", r.ContentLength, h.cfg.maxBody))
	}
	gz, err := h.gzipEncoded(r.Header.Get("Content-Encoding"))
	if err != nil {
		return nil, err
	}
	cr := &countingReader{r: http.MaxBytesReader(w, r.Body, h.cfg.maxBody)}
	defer func() { h.cfg.metrics.bytes(h.format, cr.n) }()
	if !gz {
		body, err := io.ReadAll(cr)
		return body, h.readError(err, failRead, "reading body")
	}
	return h.gunzip(cr)
}

func (h *httpHandler) gzipEncoded(enc string) (bool, error) {
	switch enc = strings.ToLower(strings.TrimSpace(enc)); enc {
	case "", "identity":
		return false, nil
	case "gzip", "x-gzip":
		return true, nil
	}
	return false, h.reject(failUnsupported, fmt.Errorf("content encoding %q not supported: use gzip or none", enc))
}

// gunzip decompresses at most maxDecoded bytes: a gzip bomb stops there.
func (h *httpHandler) gunzip(r io.Reader) ([]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, h.readError(err, failBadGzip, "reading gzip body")
	}
	body, err := io.ReadAll(io.LimitReader(zr, h.cfg.maxDecoded+1))
	if err != nil {
		return nil, h.readError(err, failBadGzip, "reading gzip body")
	}
	if int64(len(body)) > h.cfg.maxDecoded {
		return nil, h.reject(failTooLarge, fmt.Errorf("gzip body decompresses to more than %d bytes", h.cfg.maxDecoded))
	}
	return body, nil
}

// readError classifies a failure to read the body: over the size limit, or
// else kind.
func (h *httpHandler) readError(err error, kind failure, doing string) error {
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return h.reject(failTooLarge, fmt.Errorf("body exceeds the limit of %d bytes", tooLarge.Limit))
	default:
		return h.reject(kind, fmt.Errorf("%s: %w", doing, err))
	}
}

// writeError answers with a google.rpc.Status, as OTLP/HTTP requires.
func (h *httpHandler) writeError(w http.ResponseWriter, c *codec, err error) {
	kind := kindOf(err)
	if kind == failMethod {
		w.Header().Set("Allow", http.MethodPost)
	}
	if c == nil {
		c = protobufCodec()
	}
	writeMessage(w, c, kind.httpStatus(), status.New(kind.code(), err.Error()).Proto())
}

func writeMessage(w http.ResponseWriter, c *codec, code int, m proto.Message) {
	b, err := c.marshal(m)
	if err != nil {
		http.Error(w, fmt.Sprintf("encoding response: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", c.contentType)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
