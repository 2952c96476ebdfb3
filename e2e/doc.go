// Package e2e runs flightrec's binaries end to end on the real kernel against workloads with known ground truth.
//
// The tests build cmd/flightrec-agent once (TestMain), run it as a user
// would (record, run, usage errors, unprivileged), and compare what it
// reports with the ground truth of the workloads in testdata/workloads
// (internal/testworkload). Tests that load BPF need root and skip without
// it, unless FLIGHTREC_REQUIRE_BPF=1 (internal/testenv).
package e2e
