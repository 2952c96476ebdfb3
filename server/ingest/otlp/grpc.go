package otlp

import (
	"context"
	"fmt"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP exporters compress with gzip by default
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const (
	grpcService = "opentelemetry.proto.collector.profiles.v1development.ProfilesService"
	grpcExport  = "/" + grpcService + "/Export"
)

// GRPCServerOptions returns the options recommended for a grpc.Server that
// serves RegisterGRPC: a receive limit of DefaultMaxDecodedBytes (gRPC's
// default, 4 MiB, is below a busy node's batch). The limit applies after
// decompression and to every service of the server.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(DefaultMaxDecodedBytes)}
}

// RegisterGRPC serves the OTLP ProfilesService on s. Export answers OK once
// sink stored the whole request; else InvalidArgument for malformed or
// invalid requests, ResourceExhausted for ones too large or over the Limits,
// Unavailable when the sink failed (retryable). A request's metadata
// "idempotency-key" becomes the batch key.
func RegisterGRPC(s grpc.ServiceRegistrar, sink Sink, opts ...Option) {
	srv := &grpcServer{receiver: newReceiver(sink, FormatGRPC, opts)}
	// The generated descriptor but for the handler, which decodes requests
	// itself (see decodingRequest).
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: grpcService,
		HandlerType: (*collectorpb.ProfilesServiceServer)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: srv.handle}},
		Metadata:    "opentelemetry/proto/collector/profiles/v1development/profiles_service.proto",
	}, srv)
}

type grpcServer struct {
	collectorpb.UnimplementedProfilesServiceServer
	*receiver
}

func (s *grpcServer) handle(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
	d := &decodingRequest{req: new(collectorpb.ExportProfilesServiceRequest)}
	if err := dec(d); err != nil {
		return nil, s.receiveError(err)
	}
	if d.err != nil {
		return nil, s.decodeError(d.err)
	}
	if ic == nil {
		return s.Export(ctx, d.req)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: grpcExport}
	return ic(ctx, d.req, info, func(ctx context.Context, req any) (any, error) {
		return s.Export(ctx, req.(*collectorpb.ExportProfilesServiceRequest))
	})
}

// decodingRequest is what the handler has gRPC decode into instead of the
// request: gRPC answers a failure to decode with Internal, and before the
// handler runs, so Unmarshal keeps the error for the handler to answer
// InvalidArgument. protobuf-go calls the Unmarshal and Marshal methods of
// messages of this (APIv1) shape; TestGRPCRejectsBadMessages checks it does.
type decodingRequest struct {
	req *collectorpb.ExportProfilesServiceRequest
	err error
}

func (d *decodingRequest) Reset()                   {}
func (d *decodingRequest) String() string           { return "decoding ExportProfilesServiceRequest" }
func (d *decodingRequest) ProtoMessage()            {}
func (d *decodingRequest) Unmarshal(b []byte) error { d.err = proto.Unmarshal(b, d.req); return nil }
func (d *decodingRequest) Marshal() ([]byte, error) { return proto.Marshal(d.req) }

// receiveError counts a request gRPC failed to receive, such as one over the
// server's size limit. gRPC has answered it already.
func (s *grpcServer) receiveError(err error) error {
	s.cfg.metrics.request(s.format)
	kind := failMalformed
	if status.Code(err) == codes.ResourceExhausted {
		kind = failTooLarge
	}
	return toStatus(s.reject(kind, fmt.Errorf("receiving ExportProfilesServiceRequest: %s", status.Convert(err).Message())))
}

func (s *grpcServer) decodeError(err error) error {
	s.cfg.metrics.request(s.format)
	return toStatus(s.reject(failMalformed, fmt.Errorf("decoding ExportProfilesServiceRequest: %w", err)))
}

// Export implements collectorpb.ProfilesServiceServer.
func (s *grpcServer) Export(ctx context.Context, req *collectorpb.ExportProfilesServiceRequest) (*collectorpb.ExportProfilesServiceResponse, error) {
	s.cfg.metrics.request(s.format)
	s.cfg.metrics.bytes(s.format, int64(proto.Size(req)))
	if err := s.export(ctx, req, idempotencyKey(ctx)); err != nil {
		return nil, toStatus(err)
	}
	return &collectorpb.ExportProfilesServiceResponse{}, nil
}

func toStatus(err error) error {
	return status.Error(kindOf(err).code(), err.Error())
}

func idempotencyKey(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "idempotency-key"); len(v) > 0 {
		return v[0]
	}
	return ""
}
