// Package unwind completes the frame-pointer stacks the kernel hands us: it
// recovers the caller of a function sampled before its frame was set up.
// It is the seam for the .eh_frame unwinder that replaces frame pointers later.
package unwind
