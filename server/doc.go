// Package server wires flightrec's server: ingest (agent, pprof, Pyroscope,
// OTLP) into a store, and the query and HTTP API on top of it.
package server
