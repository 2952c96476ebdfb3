package elfsym

import (
	"strings"

	"github.com/ianlancetaylor/demangle"
)

// maxMangled bounds the names handed to the demangler: its work and output
// can grow much faster than its input on hostile names.
const maxMangled = 8 << 10

// Demangle returns the readable form of a C++ (Itanium ABI) or Rust name, as
// perf and c++filt show them: "ns::Class::method(int)", "f(int) [clone
// .cold]", Rust legacy names without their hash ("core::fmt::write") and
// Rust v0 names. Any other name, or one that fails to demangle, is returned
// unchanged.
func Demangle(name string) (out string) {
	if !strings.HasPrefix(name, "_Z") && !strings.HasPrefix(name, "_R") || len(name) > maxMangled {
		return name
	}
	// The demangler panics on some malformed input in older releases; a
	// symbol table from a container must not take the agent down.
	defer func() {
		if recover() != nil {
			out = name
		}
	}()
	return demangle.Filter(name, demangle.MaxLength(16))
}
