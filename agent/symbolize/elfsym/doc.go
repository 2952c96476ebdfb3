// Package elfsym reads ELF identity and symbol tables (build ID, load segments,
// .symtab/.dynsym, debug-file links) from mmapped files into compact indexes.
//
// Everything here parses untrusted bytes (binaries from any container), so
// every offset is bounds-checked and no input makes it panic. A File and its
// Symbols keep referencing the bytes given to Open instead of copying them:
// the caller must keep that mapping alive while either is in use.
package elfsym
