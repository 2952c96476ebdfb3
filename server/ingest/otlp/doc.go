// Package otlp converts OTLP profiles (v1development) into the server's model
// and serves the OTLP HTTP and gRPC endpoints.
package otlp
