package server

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/flightrec/flightrec/server/auth"
)

// grpcAuth applies the ingest token check to gRPC calls, reading the
// "authorization" metadata OTLP exporters send.
func grpcAuth(tokens *auth.Tokens) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		var tok string
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get("authorization"); len(v) > 0 {
				tok = auth.Token(v[0], nil)
			}
		}
		switch err := tokens.Allow(tok, auth.Ingest); {
		case err == nil:
			return handler(ctx, req)
		case errors.Is(err, auth.ErrForbidden):
			return nil, status.Error(codes.PermissionDenied, err.Error())
		default:
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
	}
}
