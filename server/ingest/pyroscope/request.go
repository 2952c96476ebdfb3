package pyroscope

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/flightrec/flightrec/server/ingest/pprofconv"
)

// Form fields of a multipart request, as pyroscope-go writes them.
const (
	fieldProfile     = "profile"
	fieldPrevProfile = "prev_profile"
	fieldSampleTypes = "sample_type_config"
)

// maxSampleTypeConfig bounds the JSON part; real ones are a few hundred bytes.
const maxSampleTypeConfig = 64 << 10

// Request is an /ingest request with a pprof body. Profiles are as sent,
// possibly gzip-compressed: inflating them is the caller's, within its limits.
type Request struct {
	Name        Name
	Labels      labels.Labels  // Name.Labels()
	Hint        pprofconv.Hint // from the name's suffix, else the sample_type_config display names
	From, Until time.Time      // zero when not given; Until also when before From
	Profile     []byte
	PrevProfile []byte                // the previous cumulative profile, nil if none
	SampleTypes map[string]SampleType // sample_type_config by pprof sample type, nil if none
}

// SampleType is one entry of sample_type_config. Only DisplayName (for the
// hint) and Cumulative mean anything to flightrec: units come from the
// pprof, and aggregation (average for gauges like inuse_space) is the query
// side's knowledge of the type.
type SampleType struct {
	Units       string `json:"units,omitempty"`
	Aggregation string `json:"aggregation,omitempty"`
	DisplayName string `json:"display-name,omitempty"`
	Sampled     bool   `json:"sampled,omitempty"`
	Cumulative  bool   `json:"cumulative,omitempty"`
}

// ParseRequest reads an /ingest request's query and body. Parameters other
// than name, from, until and format (spyName, sampleRate, units,
// aggregationType and unknown ones) are ignored, as Pyroscope does or
// because the pprof says better. The body is multipart/form-data with a
// "profile" field and optional "prev_profile" and "sample_type_config", or
// with format=pprof or an octet-stream Content-Type a raw pprof.
func ParseRequest(q url.Values, contentType string, body []byte) (*Request, error) {
	if !q.Has("name") {
		return nil, pprofconv.Errorf(pprofconv.ErrBadLabels, "missing parameter name (the application name)")
	}
	n, err := ParseName(q.Get("name"))
	if err != nil {
		return nil, err
	}
	r := &Request{Name: n, Labels: n.Labels(), Hint: n.Hint}
	if r.From, r.Until, err = parseInterval(q); err != nil {
		return nil, err
	}
	if err := r.readBody(q.Get("format"), contentType, body); err != nil {
		return nil, err
	}
	if r.Hint == pprofconv.HintNone {
		r.Hint = hintOf(r.SampleTypes)
	}
	return r, nil
}

func parseInterval(q url.Values) (from, until time.Time, err error) {
	if s := q.Get("from"); s != "" {
		if from, err = ParseTime(s); err != nil {
			return from, until, pprofconv.Errorf(pprofconv.ErrMalformed, "parameter from: %w", err)
		}
	}
	if s := q.Get("until"); s != "" {
		if until, err = ParseTime(s); err != nil {
			return from, until, pprofconv.Errorf(pprofconv.ErrMalformed, "parameter until: %w", err)
		}
	}
	if !from.IsZero() && until.Before(from) {
		// pyroscope-go's Flush sends until truncated to the upload rate,
		// before from; Pyroscope accepts it, so the pprof's duration is used.
		until = time.Time{}
	}
	return from, until, nil
}

// ParseTime parses a Unix time in seconds, milliseconds, microseconds or
// nanoseconds, told apart by magnitude as Pyroscope does by digit count
// (10, 13, 16, 19 digits today). Pyroscope's relative forms ("now-1h")
// and YYYYMMDD dates are not accepted: no SDK sends them.
func ParseTime(s string) (time.Time, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return time.Time{}, errors.New(strconv.Quote(s) + " is not a Unix time")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, errors.New(strconv.Quote(s) + " is out of range")
	}
	var t time.Time
	switch {
	case v < 1e11:
		t = time.Unix(v, 0)
	case v < 1e14:
		t = time.UnixMilli(v)
	case v < 1e17:
		t = time.UnixMicro(v)
	default:
		t = time.Unix(0, v)
	}
	if t.Year() < 2000 {
		return time.Time{}, errors.New(strconv.Quote(s) + " is before the year 2000")
	}
	return t, nil
}

// rawType tells whether a body of this media type is taken for a raw pprof
// without format=pprof.
func rawType(media string) bool {
	switch media {
	case "binary/octet-stream", "binary/octet-stream+pprof", "application/octet-stream",
		"application/protobuf", "application/x-protobuf", "application/vnd.google.protobuf":
		return true
	}
	return false
}

func (r *Request) readBody(format, contentType string, body []byte) error {
	media, params, _ := mime.ParseMediaType(contentType)
	switch {
	case format != "" && format != "pprof":
		return unsupported(format)
	case media == "multipart/form-data":
		return r.readForm(body, params["boundary"])
	case strings.HasPrefix(media, "binary/octet-stream+") && !rawType(media):
		return unsupported(strings.TrimPrefix(media, "binary/octet-stream+"))
	case format == "pprof" || rawType(media):
		r.Profile = body
		return nil
	}
	// Pyroscope reads any other body as "groups", its folded-stack text.
	return unsupported("groups")
}

func unsupported(format string) error {
	return pprofconv.Errorf(pprofconv.ErrUnsupported, "format %q is not supported: send pprof (format=pprof or multipart/form-data)", format)
}

func (r *Request) readForm(body []byte, boundary string) error {
	if boundary == "" {
		return pprofconv.Errorf(pprofconv.ErrMalformed, "multipart body: Content-Type has no boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var stc []byte
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return pprofconv.Errorf(pprofconv.ErrMalformed, "multipart body: %w", err)
		}
		if err := r.readPart(part, &stc); err != nil {
			return err
		}
	}
	if r.Profile == nil {
		return pprofconv.Errorf(pprofconv.ErrMalformed, "multipart body has no %q part", fieldProfile)
	}
	if stc == nil {
		return nil
	}
	if err := json.Unmarshal(stc, &r.SampleTypes); err != nil {
		return pprofconv.Errorf(pprofconv.ErrMalformed, "multipart part %s: %w", fieldSampleTypes, err)
	}
	return nil
}

// readPart stores a known part; unknown parts are skipped, as Pyroscope does.
func (r *Request) readPart(part *multipart.Part, stc *[]byte) error {
	var dst *[]byte
	limit := int64(-1)
	switch part.FormName() {
	case fieldProfile:
		dst = &r.Profile
	case fieldPrevProfile:
		dst = &r.PrevProfile
	case fieldSampleTypes:
		dst, limit = stc, maxSampleTypeConfig
	default:
		return nil
	}
	if *dst != nil {
		return pprofconv.Errorf(pprofconv.ErrMalformed, "multipart body has two %q parts", part.FormName())
	}
	var rd io.Reader = part
	if limit >= 0 {
		rd = io.LimitReader(part, limit+1)
	}
	data, err := io.ReadAll(rd)
	if err != nil {
		return pprofconv.Errorf(pprofconv.ErrMalformed, "multipart part %s: %w", part.FormName(), err)
	}
	if limit >= 0 && int64(len(data)) > limit {
		return pprofconv.Errorf(pprofconv.ErrTooLarge, "multipart part %s exceeds %s", part.FormName(), pprofconv.FormatBytes(limit))
	}
	*dst = data
	return nil
}

// hintOf reads block or mutex from the display names pyroscope-go gives
// contentions and delay (block_count, mutex_duration, ...): the only thing
// telling its block and mutex uploads apart.
func hintOf(sts map[string]SampleType) pprofconv.Hint {
	for _, st := range sts {
		switch {
		case strings.HasPrefix(st.DisplayName, "mutex_"):
			return pprofconv.HintMutex
		case strings.HasPrefix(st.DisplayName, "block_"):
			return pprofconv.HintBlock
		}
	}
	return pprofconv.HintNone
}
