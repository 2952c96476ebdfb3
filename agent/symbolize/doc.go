// Package symbolize turns the raw addresses of sampled stacks into functions,
// files and lines: user code through ELF symbols and Go's pclntab (inlined
// calls as their own frames), kernel code through /proc/kallsyms.
package symbolize
