package otlp

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	profilespb "go.opentelemetry.io/proto/otlp/profiles/v1development"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// invalidRequests break testRequest in one place each: every table's
// indices, and values. want is part of the error message naming it.
func invalidRequests() []struct {
	name   string
	mutate func(*collectorpb.ExportProfilesServiceRequest)
	want   string
} {
	const p0 = "resource_profiles[0].scope_profiles[0].profiles[0]: "
	const s0 = p0 + "samples[0]: "
	return []struct {
		name   string
		mutate func(*collectorpb.ExportProfilesServiceRequest)
		want   string
	}{
		{"string_table", func(r *req) { r.Dictionary.FunctionTable[1].NameStrindex = 999 },
			"dictionary: function_table[1].name_strindex: index 999 out of range (string_table has"},
		{"function_table", func(r *req) { r.Dictionary.LocationTable[1].Lines[1].FunctionIndex = 99 },
			"dictionary: location_table[1].lines[1].function_index: index 99 out of range (function_table has"},
		{"mapping_table", func(r *req) { r.Dictionary.LocationTable[2].MappingIndex = 99 },
			"dictionary: location_table[2].mapping_index: index 99 out of range (mapping_table has 4 entries)"},
		{"location_table", func(r *req) { r.Dictionary.StackTable[1].LocationIndices[1] = 99 },
			"dictionary: stack_table[1].location_indices[1]: index 99 out of range (location_table has"},
		{"stack_table", func(r *req) { sample0(r).StackIndex = 99 },
			s0 + "stack_index: index 99 out of range (stack_table has"},
		{"negative stack index", func(r *req) { sample0(r).StackIndex = -1 },
			s0 + "stack_index: index -1 out of range"},
		{"attribute_table from sample", func(r *req) { sample0(r).AttributeIndices[2] = 99 },
			s0 + "attribute_indices[2]: index 99 out of range (attribute_table has"},
		{"attribute_table from profile", func(r *req) { profile0(r).AttributeIndices = []int32{1, 99} },
			p0 + "attribute_indices[1]: index 99 out of range (attribute_table has"},
		{"attribute_table from mapping", func(r *req) { r.Dictionary.MappingTable[1].AttributeIndices = []int32{99} },
			"dictionary: mapping_table[1].attribute_indices[0]: index 99 out of range (attribute_table has"},
		{"attribute_table from location", func(r *req) { r.Dictionary.LocationTable[1].AttributeIndices = []int32{-3} },
			"dictionary: location_table[1].attribute_indices[0]: index -3 out of range (attribute_table has"},
		{"attribute key", func(r *req) { r.Dictionary.AttributeTable[1].KeyStrindex = 999 },
			"dictionary: attribute_table[1].key_strindex: index 999 out of range (string_table has"},
		{"attribute string value", func(r *req) {
			r.Dictionary.AttributeTable[1].Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValueStrindex{StringValueStrindex: 999}}
		}, "dictionary: attribute_table[1].value: string_value_strindex: index 999 out of range (string_table has"},
		{"mapping filename", func(r *req) { r.Dictionary.MappingTable[2].FilenameStrindex = 999 },
			"dictionary: mapping_table[2].filename_strindex: index 999 out of range (string_table has"},
		{"link_table", func(r *req) { sample0(r).LinkIndex = 7 },
			s0 + "link_index: index 7 out of range (link_table has 1 entries)"},
		{"sample_type", func(r *req) { profile0(r).SampleType.TypeStrindex = 999 },
			p0 + "sample_type.type_strindex: index 999 out of range (string_table has"},
		{"period_type", func(r *req) { profile0(r).PeriodType.UnitStrindex = 999 },
			p0 + "period_type.unit_strindex: index 999 out of range (string_table has"},
		{"resource key", func(r *req) {
			r.ResourceProfiles[1].Resource.Attributes[0] = &commonpb.KeyValue{KeyStrindex: 999}
		}, "resource_profiles[1].resource: attributes[0]: key_strindex: index 999 out of range (string_table has"},
		{"negative value", func(r *req) { sample0(r).Values = []int64{1, -5, 1} },
			s0 + "negative value -5"},
		{"values and timestamps", func(r *req) { sample0(r).Values = []int64{1, 2} },
			s0 + "2 values but 3 timestamps_unix_nano"},
		{"value overflow", func(r *req) { sample0(r).TimestampsUnixNano, sample0(r).Values = nil, []int64{math.MaxInt64 / 2} },
			s0 + "value 4611686018427387903 × 50000000 overflows int64"},
		{"time", func(r *req) { profile0(r).TimeUnixNano = math.MaxUint64 },
			p0 + "time_unix_nano 18446744073709551615 out of range"},
		{"negative period", func(r *req) { profile0(r).Period = -1 },
			p0 + "negative period -1"},
	}
}

type req = collectorpb.ExportProfilesServiceRequest

func profile0(r *req) *profilespb.Profile { return r.ResourceProfiles[0].ScopeProfiles[0].Profiles[0] }
func sample0(r *req) *profilespb.Sample   { return profile0(r).Samples[0] }

func TestHTTPRejectsInvalid(t *testing.T) {
	sink := &recordingSink{}
	url := startHTTP(t, sink)
	for _, tc := range invalidRequests() {
		t.Run(tc.name, func(t *testing.T) {
			r := testRequest()
			tc.mutate(r)
			resp := post(t, url, marshal(t, r), map[string]string{"Content-Type": "application/x-protobuf"})
			assertHTTPError(t, resp, http.StatusBadRequest, codes.InvalidArgument, "invalid ExportProfilesServiceRequest: "+tc.want)
		})
	}
	if sink.calls != 0 {
		t.Errorf("sink called %d times", sink.calls)
	}
}

func TestGRPCRejectsInvalid(t *testing.T) {
	sink := &recordingSink{}
	client, _ := startGRPC(t, sink, nil)
	for _, tc := range invalidRequests() {
		t.Run(tc.name, func(t *testing.T) {
			r := testRequest()
			tc.mutate(r)
			_, err := client.Export(context.Background(), r)
			assertGRPCError(t, err, codes.InvalidArgument, "invalid ExportProfilesServiceRequest: "+tc.want)
		})
	}
	if sink.calls != 0 {
		t.Errorf("sink called %d times", sink.calls)
	}
}

func TestHTTPRejectsBadBodies(t *testing.T) {
	pb := marshal(t, testRequest())
	gz := gzipped(t, pb)
	bomb := gzipped(t, make([]byte, 64<<20))
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	const protobuf = "application/x-protobuf"
	small := WithBodyLimits(1024, 4<<20)

	for _, tc := range []struct {
		name       string
		method     string
		body       io.Reader
		header     map[string]string
		opts       []Option
		wantStatus int
		wantCode   codes.Code
		want       string
	}{
		{"malformed protobuf", "POST", bytes.NewReader([]byte{0x0a, 0xff, 0x01}), map[string]string{"Content-Type": protobuf}, nil,
			400, codes.InvalidArgument, "decoding application/x-protobuf ExportProfilesServiceRequest: "},
		{"malformed json", "POST", strings.NewReader(`{"resourceProfiles": 5}`), map[string]string{"Content-Type": "application/json"}, nil,
			400, codes.InvalidArgument, "decoding application/json ExportProfilesServiceRequest: "},
		{"truncated gzip", "POST", bytes.NewReader(gz[:len(gz)/2]), map[string]string{"Content-Type": protobuf, "Content-Encoding": "gzip"}, nil,
			400, codes.InvalidArgument, "reading gzip body: unexpected EOF"},
		{"not gzip", "POST", bytes.NewReader(pb), map[string]string{"Content-Type": protobuf, "Content-Encoding": "gzip"}, nil,
			400, codes.InvalidArgument, "reading gzip body: gzip: invalid header"},
		{"gzip bomb", "POST", bytes.NewReader(bomb), map[string]string{"Content-Type": protobuf, "Content-Encoding": "gzip"}, []Option{WithBodyLimits(1<<20, 4<<20)},
			413, codes.ResourceExhausted, "gzip body decompresses to more than 4194304 bytes"},
		{"oversized body", "POST", bytes.NewReader(random), map[string]string{"Content-Type": protobuf}, []Option{small},
			413, codes.ResourceExhausted, "body of 4096 bytes exceeds the limit of 1024"},
		{"oversized chunked body", "POST", io.MultiReader(bytes.NewReader(random)), map[string]string{"Content-Type": protobuf}, []Option{small},
			413, codes.ResourceExhausted, "body exceeds the limit of 1024 bytes"},
		{"over the default limit", "POST", bytes.NewReader(make([]byte, DefaultMaxBodyBytes+1)), map[string]string{"Content-Type": protobuf}, nil,
			413, codes.ResourceExhausted, "exceeds the limit of 33554432"},
		{"wrong content type", "POST", bytes.NewReader(pb), map[string]string{"Content-Type": "text/plain"}, nil,
			415, codes.InvalidArgument, `content type "text/plain" not supported`},
		{"no content type", "POST", bytes.NewReader(pb), nil, nil,
			415, codes.InvalidArgument, `content type "" not supported`},
		{"unsupported encoding", "POST", bytes.NewReader(pb), map[string]string{"Content-Type": protobuf, "Content-Encoding": "br"}, nil,
			415, codes.InvalidArgument, `content encoding "br" not supported`},
		{"long idempotency key", "POST", bytes.NewReader(pb), map[string]string{"Content-Type": protobuf, "Idempotency-Key": strings.Repeat("k", 257)}, nil,
			400, codes.InvalidArgument, "idempotency key is longer than 256 bytes"},
		{"GET", "GET", nil, map[string]string{"Content-Type": protobuf}, nil,
			405, codes.Unimplemented, "method GET not allowed"},
		{"over the limits", "POST", bytes.NewReader(pb), map[string]string{"Content-Type": protobuf}, []Option{WithLimits(Limits{MaxProfiles: 1})},
			413, codes.ResourceExhausted, "limit exceeded: more than 1 profiles"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &recordingSink{}
			url := startHTTP(t, sink, tc.opts...)
			hreq, err := http.NewRequest(tc.method, url, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				hreq.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			assertHTTPError(t, resp, tc.wantStatus, tc.wantCode, tc.want)
			if tc.wantStatus == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow %q, want POST", resp.Header.Get("Allow"))
			}
			if sink.calls != 0 {
				t.Errorf("sink called %d times", sink.calls)
			}
		})
	}
}

// rawCodec sends bytes as they are, to get malformed messages past the
// client.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *(v.(*[]byte)) = data; return nil }
func (rawCodec) Name() string                       { return "proto" }

func TestGRPCRejectsBadMessages(t *testing.T) {
	sink := &recordingSink{}
	_, conn := startGRPC(t, sink, nil)
	var reply []byte
	err := conn.Invoke(context.Background(), grpcExport, []byte{0x0a, 0xff, 0x01}, &reply, grpc.ForceCodec(rawCodec{}))
	assertGRPCError(t, err, codes.InvalidArgument, "decoding ExportProfilesServiceRequest: ")

	small, _ := startGRPC(t, sink, []grpc.ServerOption{grpc.MaxRecvMsgSize(1024)})
	_, err = small.Export(context.Background(), testRequest())
	assertGRPCError(t, err, codes.ResourceExhausted, "grpc: received message larger than max")

	limited, _ := startGRPC(t, sink, nil, WithLimits(Limits{MaxProfiles: 1}))
	_, err = limited.Export(context.Background(), testRequest())
	assertGRPCError(t, err, codes.ResourceExhausted, "limit exceeded: more than 1 profiles")

	if sink.calls != 0 {
		t.Errorf("sink called %d times", sink.calls)
	}
}

// A sink failure is retryable: 503 and Unavailable.
func TestSinkFailure(t *testing.T) {
	sink := &recordingSink{fail: errSinkDown}
	url := startHTTP(t, sink)
	client, _ := startGRPC(t, sink, nil)
	resp := post(t, url, marshal(t, testRequest()), map[string]string{"Content-Type": "application/x-protobuf"})
	assertHTTPError(t, resp, http.StatusServiceUnavailable, codes.Unavailable, "storing profiles: store is down")
	_, err := client.Export(context.Background(), testRequest())
	assertGRPCError(t, err, codes.Unavailable, "storing profiles: store is down")
	if sink.calls != 2 || len(sink.take()) != 0 {
		t.Errorf("sink called %d times, want 2 failed calls", sink.calls)
	}
}

// assertHTTPError checks the status and the google.rpc.Status body, in the
// request's encoding (protobuf unless it was JSON).
func assertHTTPError(t *testing.T, resp *http.Response, wantStatus int, wantCode codes.Code, want string) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Errorf("status %d, want %d (body %q)", resp.StatusCode, wantStatus, body)
	}
	var st spb.Status
	unmarshal := proto.Unmarshal
	if resp.Header.Get("Content-Type") == "application/json" {
		unmarshal = protojson.Unmarshal
	}
	if err := unmarshal(body, &st); err != nil {
		t.Fatalf("body %q (%s) is no google.rpc.Status: %v", body, resp.Header.Get("Content-Type"), err)
	}
	if codes.Code(st.GetCode()) != wantCode || !strings.Contains(st.GetMessage(), want) {
		t.Errorf("status %v %q, want %v containing %q", codes.Code(st.GetCode()), st.GetMessage(), wantCode, want)
	}
}

func assertGRPCError(t *testing.T, err error, wantCode codes.Code, want string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != wantCode || !strings.Contains(st.Message(), want) {
		t.Errorf("error %v %q, want %v containing %q", st.Code(), st.Message(), wantCode, want)
	}
}
