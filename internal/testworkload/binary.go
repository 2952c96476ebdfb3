package testworkload

import "fmt"

// BuildBinary is Build for programs that run outside go test (benchmarks):
// it compiles workload name (one of Names) once per process, sharing Build's
// on-disk cache, and returns the binary's path or the build error instead of
// failing a test. Like Build, it finds the sources from the working
// directory, which must be inside the repository.
func BuildBinary(name string) (string, error) {
	w, ok := workloads[name]
	if !ok {
		return "", fmt.Errorf("testworkload: unknown workload %q (have %v)", name, Names())
	}
	buildsMu.Lock()
	r := builds[name]
	if r == nil {
		r = &buildResult{}
		builds[name] = r
	}
	buildsMu.Unlock()
	r.once.Do(func() { r.path, r.err = build(name, w) })
	if r.err != nil {
		return "", fmt.Errorf("testworkload: building %s: %w", name, r.err)
	}
	return r.path, nil
}
