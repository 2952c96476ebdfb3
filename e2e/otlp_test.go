package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	profilespb "go.opentelemetry.io/proto/otlp/profiles/v1development"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// otlpRequest is what OpenTelemetry's eBPF profiler sends, in miniature: a
// dictionary, one resource of service svc, cpu samples (samples/count with a
// 50 ms cpu period) on two stacks, one of them with an inlined call.
func otlpRequest(svc string) *collectorpb.ExportProfilesServiceRequest {
	strs := []string{""}
	str := func(s string) int32 {
		for i, x := range strs {
			if x == s {
				return int32(i)
			}
		}
		strs = append(strs, s)
		return int32(len(strs) - 1)
	}
	d := &profilespb.ProfilesDictionary{
		MappingTable:   []*profilespb.Mapping{{}, {MemoryStart: 0x400000, MemoryLimit: 0x800000, FilenameStrindex: str("/usr/bin/shop")}},
		FunctionTable:  []*profilespb.Function{{}, {NameStrindex: str("main.parse"), FilenameStrindex: str("parse.go")}, {NameStrindex: str("main.handle"), FilenameStrindex: str("handle.go")}, {NameStrindex: str("main.main"), FilenameStrindex: str("main.go")}},
		LinkTable:      []*profilespb.Link{{}},
		AttributeTable: []*profilespb.KeyValueAndUnit{{}},
	}
	d.LocationTable = []*profilespb.Location{{},
		{MappingIndex: 1, Address: 0x401000, Lines: []*profilespb.Line{{FunctionIndex: 1, Line: 10}, {FunctionIndex: 2, Line: 20}}},
		{MappingIndex: 1, Address: 0x400100, Lines: []*profilespb.Line{{FunctionIndex: 3, Line: 5}}},
	}
	d.StackTable = []*profilespb.Stack{{}, {LocationIndices: []int32{1, 2}}, {LocationIndices: []int32{2}}}
	start := uint64(time.Now().Add(-time.Minute).UnixNano())
	prof := &profilespb.Profile{
		SampleType:   &profilespb.ValueType{TypeStrindex: str("samples"), UnitStrindex: str("count")},
		PeriodType:   &profilespb.ValueType{TypeStrindex: str("cpu"), UnitStrindex: str("nanoseconds")},
		Period:       int64(50 * time.Millisecond),
		TimeUnixNano: start,
		DurationNano: uint64(10 * time.Second),
		Samples: []*profilespb.Sample{
			{StackIndex: 1, Values: []int64{30}},
			{StackIndex: 2, Values: []int64{10}},
		},
	}
	d.StringTable = strs
	s := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	return &collectorpb.ExportProfilesServiceRequest{
		Dictionary: d,
		ResourceProfiles: []*profilespb.ResourceProfiles{{
			Resource:      &resourcepb.Resource{Attributes: []*commonpb.KeyValue{s("service.name", svc), s("service.version", "2.1"), s("host.name", "node-7"), s("k8s.pod.name", "shop-0")}},
			ScopeProfiles: []*profilespb.ScopeProfiles{{Profiles: []*profilespb.Profile{prof}}},
		}},
	}
}

// TestServerOTLP sends the same profile over OTLP/HTTP and OTLP/gRPC to the
// real server and reads both back identically: functions, values, labels.
func TestServerOTLP(t *testing.T) {
	grpcAddr := freeAddr(t)
	srv := startServer(t, t.TempDir(), "--otlp-grpc-listen", grpcAddr)

	body, err := proto.Marshal(otlpRequest("shop-http"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.url+"/v1development/profiles", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("OTLP/HTTP: %d %s", resp.StatusCode, msg)
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := collectorpb.NewProfilesServiceClient(conn).Export(ctx, otlpRequest("shop-grpc")); err != nil {
		t.Fatalf("OTLP/gRPC export: %v", err)
	}

	type topResp struct {
		Total     int64
		Functions []struct {
			Name        string
			Self, Total int64
		}
	}
	read := func(svc string) (topResp, string) {
		var r topResp
		getJSON(t, apiURL(srv, "/api/v1/top", fmt.Sprintf(`cpu{service=%q}`, svc), "limit", "0"), &r)
		var fns []string
		for _, f := range r.Functions {
			fns = append(fns, fmt.Sprintf("%s:%d/%d", f.Name, f.Self, f.Total))
		}
		slices.Sort(fns)
		return r, strings.Join(fns, " ")
	}
	viaHTTP, fnHTTP := read("shop-http")
	viaGRPC, fnGRPC := read("shop-grpc")
	// 40 samples of 50 ms; main.parse is inlined into main.handle.
	if want := int64(40 * 50 * time.Millisecond); viaHTTP.Total != want || viaGRPC.Total != want {
		t.Errorf("totals: http %d, grpc %d; want %d", viaHTTP.Total, viaGRPC.Total, want)
	}
	if fnHTTP != fnGRPC || !strings.Contains(fnHTTP, "main.parse:1500000000/1500000000") || !strings.Contains(fnHTTP, "main.main:500000000/2000000000") {
		t.Errorf("functions differ or are wrong:\n http %s\n grpc %s", fnHTTP, fnGRPC)
	}
	for _, svc := range []string{"shop-http", "shop-grpc"} {
		sel := fmt.Sprintf(`cpu{service=%q}`, svc)
		for name, want := range map[string]string{"version": "2.1", "node": "node-7", "pod": "shop-0", "service_name": svc} {
			if got := labelValues(t, srv, name, sel); !slices.Equal(got, []string{want}) {
				t.Errorf("%s: label %s = %v, want [%s]", svc, name, got, want)
			}
		}
	}
	p := fetchPprof(t, srv, `cpu{service="shop-grpc"}`)
	var inlined bool
	for _, l := range p.Location {
		inlined = inlined || (len(l.Line) == 2 && l.Line[0].Function.Name == "main.parse" && l.Line[1].Function.Name == "main.handle")
	}
	if !inlined {
		t.Errorf("main.parse is not an inlined frame of main.handle in the pprof read back")
	}
}
