// Package bpf holds flightrec's BPF programs (the C sources next to this
// file) and the Go bindings bpf2go generates from them.
//
// The generated .go and .o files are committed so that building the agent
// needs no clang; `make generate` rebuilds them and CI fails on a diff.
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -go-package bpf -output-stem sampler -target amd64 -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -I./include -I/usr/include/x86_64-linux-gnu" Sampler sampler.bpf.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -go-package bpf -output-stem offcpu -type offcpu_record -target amd64 -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -I./include -I/usr/include/x86_64-linux-gnu" Offcpu offcpu.bpf.c
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -go-package bpf -output-stem events -type event_record -target amd64 -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -I./include -I/usr/include/x86_64-linux-gnu" Events events.bpf.c
