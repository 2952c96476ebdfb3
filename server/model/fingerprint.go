package model

import (
	"hash/maphash"
	"math/bits"
)

// Frame fingerprints let a store find known stacks without comparing
// frames: ingest computes them while it builds frames (from hashes of the
// strings it already hashed to deduplicate them) and hands them over in
// StackSet.FrameFPs, and a store computes the same for frames that come
// without. Both sides must agree bit for bit, so FrameFP is defined here
// once, by composition: FrameFP(f) equals FrameFPOf with the StringFP of
// each of f's strings.
//
// Fingerprints are keyed by a seed random per process, so a sender cannot
// craft two frames that collide; they are therefore only comparable within
// one process and are never stored (a store rebuilds its own when it
// loads).

// fpSeed keys every fingerprint, and fpKeys, drawn from it, the mixing of
// a frame's fields. They are set once, at start-up, and only read.
var (
	fpSeed = maphash.MakeSeed()
	fpKeys = [4]uint64{
		maphash.Comparable(fpSeed, 1), maphash.Comparable(fpSeed, 2),
		maphash.Comparable(fpSeed, 3), maphash.Comparable(fpSeed, 4),
	}
)

// StringFP fingerprints one string of a frame.
func StringFP(s string) uint64 {
	return maphash.String(fpSeed, s)
}

// FrameFPOf fingerprints a frame from the StringFP of its function, file,
// mapping and build ID, and its other fields. Its inputs are mostly keyed
// hashes already, so it mixes them with wyhash's multiply-fold (a few ns),
// not a hash of their bytes (about ten times that): ingest computes one
// per frame of every profile.
func FrameFPOf(function, file, mapping, buildID uint64, line int64, inlined bool, address uint64) uint64 {
	var inl uint64
	if inlined {
		inl = 1
	}
	h := mix(function^fpKeys[0], file^fpKeys[1])
	h = mix(h^mapping, buildID^fpKeys[2])
	h = mix(h^uint64(line), address^fpKeys[3])
	return mix(h^inl, fpKeys[0]^fpKeys[3])
}

// mix is wyhash's mum: the 128-bit product of a and b, folded.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// FrameFP fingerprints a frame's content: every field of Frame.
func FrameFP(f Frame) uint64 {
	return FrameFPOf(StringFP(f.Function), StringFP(f.File), StringFP(f.Mapping), StringFP(f.BuildID), f.Line, f.Inlined, f.Address)
}
