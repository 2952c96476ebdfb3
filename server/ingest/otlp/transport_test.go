package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func clock() time.Time { return testNow }

var quiet = slog.New(slog.DiscardHandler)

// startHTTP serves NewHTTPHandler on a loopback test server.
func startHTTP(t *testing.T, sink Sink, opts ...Option) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(HTTPPath, NewHTTPHandler(sink, append([]Option{WithClock(clock), WithLogger(quiet)}, opts...)...))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + HTTPPath
}

// startGRPC serves RegisterGRPC on a loopback listener and returns a client
// of the generated ProfilesService stub.
func startGRPC(t *testing.T, sink Sink, serverOpts []grpc.ServerOption, opts ...Option) (collectorpb.ProfilesServiceClient, *grpc.ClientConn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(serverOpts...)
	RegisterGRPC(s, sink, append([]Option{WithClock(clock), WithLogger(quiet)}, opts...)...)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return collectorpb.NewProfilesServiceClient(conn), conn
}

func post(t *testing.T, url string, body []byte, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The same request over every transport and encoding stores the same batch
// as Convert produces, which is wantBatch.
func TestTransportsAgree(t *testing.T) {
	req := testRequest()
	direct, err := Convert(req, testNow, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	assertBatch(t, direct, wantBatch())

	sink := &recordingSink{}
	url := startHTTP(t, sink)
	client, _ := startGRPC(t, sink, GRPCServerOptions())
	pb := marshal(t, req)
	js, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}

	sends := []struct {
		name string
		send func(t *testing.T)
	}{
		{"http protobuf", func(t *testing.T) {
			resp := post(t, url, pb, map[string]string{"Content-Type": "application/x-protobuf", "Idempotency-Key": "k1"})
			assertExportOK(t, resp, proto.Unmarshal)
		}},
		{"http protobuf gzip", func(t *testing.T) {
			resp := post(t, url, gzipped(t, pb), map[string]string{"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", "Idempotency-Key": "k1"})
			assertExportOK(t, resp, proto.Unmarshal)
		}},
		{"http json", func(t *testing.T) {
			resp := post(t, url, js, map[string]string{"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": "k1"})
			assertExportOK(t, resp, protojson.Unmarshal)
		}},
		{"grpc", func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "idempotency-key", "k1")
			if _, err := client.Export(ctx, req); err != nil {
				t.Fatal(err)
			}
		}},
		{"grpc gzip", func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "idempotency-key", "k1")
			if _, err := client.Export(ctx, req, grpc.UseCompressor(grpcgzip.Name)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	want := *direct
	want.Key = "k1"
	for _, s := range sends {
		t.Run(s.name, func(t *testing.T) {
			s.send(t)
			got := sink.take()
			if len(got) != 1 {
				t.Fatalf("%d batches stored, want 1", len(got))
			}
			assertBatch(t, got[0], &want)
			if !reflect.DeepEqual(got[0], &want) {
				t.Errorf("batch differs from Convert's")
			}
		})
	}
}

func assertExportOK(t *testing.T, resp *http.Response, unmarshal func([]byte, proto.Message) error) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %q", resp.StatusCode, body)
	}
	var out collectorpb.ExportProfilesServiceResponse
	if err := unmarshal(body, &out); err != nil {
		t.Fatalf("response %q: %v", body, err)
	}
	if out.GetPartialSuccess() != nil {
		t.Errorf("partial success %v", out.GetPartialSuccess())
	}
}

// A request that converts to nothing is acknowledged without bothering the
// sink.
func TestEmptyRequest(t *testing.T) {
	sink := &recordingSink{}
	url := startHTTP(t, sink)
	client, _ := startGRPC(t, sink, nil)
	empty := &collectorpb.ExportProfilesServiceRequest{}
	assertExportOK(t, post(t, url, marshal(t, empty), map[string]string{"Content-Type": "application/x-protobuf"}), proto.Unmarshal)
	if _, err := client.Export(context.Background(), empty); err != nil {
		t.Fatal(err)
	}
	if sink.calls != 0 {
		t.Errorf("sink called %d times for empty requests", sink.calls)
	}
}

// Interceptors see the decoded request, as with the generated handler.
func TestGRPCInterceptorSeesRequest(t *testing.T) {
	var seen []string
	ic := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		r, _ := req.(*collectorpb.ExportProfilesServiceRequest)
		seen = append(seen, fmt.Sprintf("%s %d", info.FullMethod, len(r.GetResourceProfiles())))
		return h(ctx, req)
	}
	sink := &recordingSink{}
	client, _ := startGRPC(t, sink, []grpc.ServerOption{grpc.UnaryInterceptor(ic)})
	if _, err := client.Export(context.Background(), testRequest()); err != nil {
		t.Fatal(err)
	}
	want := "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export 2"
	if len(seen) != 1 || seen[0] != want || len(sink.take()) != 1 {
		t.Errorf("interceptor saw %q, want [%q]", seen, want)
	}
}
