package pprofconv

import (
	"unsafe"

	"github.com/flightrec/flightrec/server/model"
)

// frameTable holds the distinct frames of one profile and the frames of
// each location. It is built once per profile, one step per location
// line, so samples only concatenate integer ranges.
//
// Frames are equal when their content is (as model.Frame values): two
// locations at different addresses on the same line are one frame, and so
// are two pprof functions or mappings with the same strings. Keys are
// integers: a string counts by its canonical index, the first index of the
// string table holding the same text once made valid UTF-8, so each string
// is validated and hashed once however many frames use it. Frames are
// found by chains per function name, short lists of the frames (lines) of
// a function, rather than by hashing keys; a long chain overflows into a
// map.
//
// Each frame also gets its fingerprint (model.FrameFP), for the store:
// computed from the hashes of its strings, which finding strings by text
// computes anyway, so no string is hashed twice.
type frameTable struct {
	keys      []frameKey // per frame (see frame)
	fps       []uint64   // per frame, its model.FrameFP
	next      []int32    // per frame: the next frame of its chain, -1 at the end
	chains    []chain    // per canonical string index: the frames of that function name
	index     map[frameKey]int32
	locFrames []int32 // frames of every location, innermost first
	locSpans  []span  // per location, its range of locFrames
	locFrame  []int32 // per location: its frame if it has one (most do), else -1
	funcKeys  []funcKey

	canon     []int32  // per string index: canonical index + 1, 0 until computed
	valid     []string // per canonical index: the string made valid UTF-8
	strFPs    []uint64 // per canonical index: model.StringFP of valid
	byText    textIndex
	mapCanon  []int32 // per mapping: its canonical mapping
	noMapping int32   // the canonical mapping of locations without one
	mapByText map[[2]int32]int32
	mapTexts  [][2]string // per canonical mapping: file and build ID
	mapFPs    [][2]uint64 // per canonical mapping: model.StringFP of file and build ID
}

// funcKey is a function's canonical name (its system name if the name
// is empty) and file.
type funcKey struct{ name, file int32 }

// chain lists frames of one function name: first is 1 + the latest
// frame, n how many (up to maxChain; more go to the index map).
type chain struct{ first, n int32 }

// maxChain bounds a chain's length, and so the cost of a lookup: a name
// with more frames (nameless functions, one function of many lines) has
// the others in the map.
const maxChain = 16

// frameKey identifies a frame by content, its strings by canonical index:
// keys are equal exactly when frames are. An unsymbolized frame has the
// empty string's index as name and file; a location without a mapping,
// the mapping whose file and build ID are empty.
type frameKey struct {
	name, file, mapping int32
	inlined             bool
	line                int64
	address             uint64
}

func (ft *frameTable) reset() {
	ft.fps = ft.fps[:0]
	ft.keys = ft.keys[:0]
	ft.next = ft.next[:0]
	ft.locFrames = ft.locFrames[:0]
	ft.locSpans = ft.locSpans[:0]
	ft.locFrame = ft.locFrame[:0]
	ft.mapCanon = ft.mapCanon[:0]
	ft.mapTexts = ft.mapTexts[:0]
	ft.mapFPs = ft.mapFPs[:0]
	clear(ft.index)
	clear(ft.mapByText)
}

// build computes the frames of every location of t.
func (ft *frameTable) build(t *tables) {
	if ft.index == nil {
		ft.index = map[frameKey]int32{}
		ft.mapByText = map[[2]int32]int32{}
	}
	ft.byText.reset(len(t.strs))
	ft.canon = resize(ft.canon, len(t.strs))
	ft.valid = resize(ft.valid, len(t.strs))
	ft.strFPs = resize(ft.strFPs, len(t.strs))
	ft.chains = resize(ft.chains, len(t.strs))
	ft.noMapping = ft.canonicalMapping(t, 0, 0) // strs[0] is ""
	for _, m := range t.mappings {
		ft.mapCanon = append(ft.mapCanon, ft.canonicalMapping(t, m.file, m.buildID))
	}
	ft.funcKeys = ft.funcKeys[:0]
	for i := range t.functions {
		ft.funcKeys = append(ft.funcKeys, ft.function(t, &t.functions[i]))
	}
	for i := range t.locations {
		start := int32(len(ft.locFrames))
		ft.location(t, &t.locations[i])
		end := int32(len(ft.locFrames))
		ft.locSpans = append(ft.locSpans, span{start, end})
		one := int32(-1)
		if end-start == 1 {
			one = ft.locFrames[start]
		}
		ft.locFrame = append(ft.locFrame, one)
	}
}

// location appends loc's frames. pprof lists a location's lines innermost
// first, each inlined into the next, the last being the function the code
// physically belongs to. A location without lines is an unsymbolized
// address, kept object-relative so it can be symbolized later.
func (ft *frameTable) location(t *tables, loc *location) {
	k := frameKey{mapping: ft.noMapping}
	var m *mapping
	if loc.mapping >= 0 {
		m = &t.mappings[loc.mapping]
		k.mapping = ft.mapCanon[loc.mapping]
	}
	if loc.lines.len() == 0 {
		empty := ft.canonical(t, 0)
		k.name, k.file, k.address = empty, empty, objectAddress(loc.address, m)
		ft.locFrames = append(ft.locFrames, ft.intern(k))
		return
	}
	for j := loc.lines.start; j < loc.lines.end; j++ {
		ln := &t.lines[j]
		fk := ft.funcKeys[ln.function]
		k.name, k.file = fk.name, fk.file
		k.line, k.inlined = ln.line, j < loc.lines.end-1
		ft.locFrames = append(ft.locFrames, ft.intern(k))
	}
}

// function returns the canonical name and file of fn. Functions are
// canonicalized in one pass, in the order of the string table more or
// less, rather than as lines name them, in no order: the lines' lookups
// then read one small table instead of functions, strs and canon.
func (ft *frameTable) function(t *tables, fn *function) funcKey {
	name := fn.name
	if t.strs[name] == "" {
		name = fn.systemName
	}
	return funcKey{ft.canonical(t, name), ft.canonical(t, fn.filename)}
}

func (ft *frameTable) intern(k frameKey) int32 {
	ch := &ft.chains[k.name]
	for id := ch.first - 1; id >= 0; id = ft.next[id] {
		if ft.keys[id] == k {
			return id
		}
	}
	if ch.n == maxChain {
		if id, ok := ft.index[k]; ok {
			return id
		}
	}
	id := int32(len(ft.keys))
	if ch.n < maxChain {
		ft.next = append(ft.next, ch.first-1)
		ch.first, ch.n = id+1, ch.n+1
	} else {
		ft.next = append(ft.next, -1)
		ft.index[k] = id
	}
	ft.keys = append(ft.keys, k)
	mfp := ft.mapFPs[k.mapping]
	ft.fps = append(ft.fps, model.FrameFPOf(ft.strFPs[k.name], ft.strFPs[k.file], mfp[0], mfp[1], k.line, k.inlined, k.address))
	return id
}

// frame returns frame f as the model has it. Frames are built once
// every stack is known, for the output: a model.Frame is three times the
// size of its key.
func (ft *frameTable) frame(f int32) model.Frame {
	k := &ft.keys[f]
	mt := &ft.mapTexts[k.mapping]
	return model.Frame{
		Function: ft.valid[k.name], File: ft.valid[k.file], Line: k.line, Inlined: k.inlined,
		Mapping: mt[0], BuildID: mt[1], Address: k.address,
	}
}

// canonical returns the canonical index of string i, validating it the
// first time.
func (ft *frameTable) canonical(t *tables, i int64) int32 {
	if c := ft.canon[i]; c != 0 {
		return c - 1
	}
	s := validString(t.strs[i])
	c, h := ft.byText.find(s, int32(i), ft.valid)
	if c == int32(i) {
		ft.valid[c], ft.strFPs[c] = s, h
	}
	ft.canon[i] = c + 1
	return c
}

// textIndex finds strings of the string table by text: a hash table of
// indexes, open addressing, for up to half as many strings as it has
// slots. It costs a third of a map[string]int32, which matters at a few
// thousand new strings per profile. Its hash is model.StringFP, so that
// frame fingerprints reuse it.
type textIndex struct {
	slots []uint64 // hash>>32<<32 | index+1; 0 is free
}

// reset empties x for up to n strings.
func (x *textIndex) reset(n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	x.slots = resize(x.slots, size)
}

// find returns the index of the string of text s (texts holds the
// strings by index), adding i as that index if there is none, and the
// hash of s.
func (x *textIndex) find(s string, i int32, texts []string) (int32, uint64) {
	h := model.StringFP(s)
	mask := uint64(len(x.slots) - 1)
	for pos := h & mask; ; pos = (pos + 1) & mask {
		slot := x.slots[pos]
		if slot == 0 {
			x.slots[pos] = h>>32<<32 | uint64(i+1)
			return i, h
		}
		if slot>>32 == h>>32 {
			if j := int32(uint32(slot)) - 1; texts[j] == s {
				return j, h
			}
		}
	}
}

// canonicalMapping returns the canonical mapping of a mapping's file and
// build ID (string indexes).
func (ft *frameTable) canonicalMapping(t *tables, file, buildID int64) int32 {
	k := [2]int32{ft.canonical(t, file), ft.canonical(t, buildID)}
	c, ok := ft.mapByText[k]
	if !ok {
		c = int32(len(ft.mapTexts))
		ft.mapByText[k] = c
		ft.mapTexts = append(ft.mapTexts, [2]string{ft.valid[k[0]], ft.valid[k[1]]})
		ft.mapFPs = append(ft.mapFPs, [2]uint64{ft.strFPs[k[0]], ft.strFPs[k[1]]})
	}
	return c
}

// objectAddress is docs/wire.md's address - memory_start + file_offset: the
// address within the object file, the same in every process mapping it.
func objectAddress(addr uint64, m *mapping) uint64 {
	if m == nil || addr < m.start {
		return addr
	}
	return addr - m.start + m.offset
}

// stackTable interns the stacks of one profile, as sequences of frames,
// so that the samples of a stack merge and each output profile refers to
// it by id. Equal frame sequences are equal stacks: a location's frames
// are inlined but for its last, so a sequence splits into locations one
// way only. Keeping frames rather than locations makes a stack's
// sequence the model's stack as it is (leaf first, over the frame table).
type stackTable struct {
	frames []int32 // every stack's frames, leaf first
	spans  []span  // per stack, its range of frames
	index  map[string]int32
}

func (st *stackTable) reset() {
	clear(st.index) // its keys alias frames, about to be overwritten
	st.frames = st.frames[:0]
	st.spans = st.spans[:0]
}

// add interns the stack of sample s and returns its id and depth (its
// frames). A stack deeper than maxDepth is not interned: add returns -1
// and its depth, having appended no more than maxDepth frames or one per
// location of the sample, so a hostile sample (locations of many lines)
// costs no more memory than the limit or its own size.
func (st *stackTable) add(t *tables, s sample, ft *frameTable, maxDepth int) (int32, int) {
	start := len(st.frames)
	// Locals, and a location of one frame (most) read with one load: this
	// loop runs once per location of every sample.
	frames, locFrame, locSpans, locFrames := st.frames, ft.locFrame, ft.locSpans, ft.locFrames
	for _, li := range t.sampleLocs[s.locs.start:s.locs.end] {
		if f := locFrame[li]; f >= 0 {
			frames = append(frames, f) // at most one per location: checked below
			continue
		}
		sp := locSpans[li]
		if len(frames)-start+sp.len() > maxDepth { // before appending many
			st.frames = frames[:start]
			return -1, ft.depth(t, s)
		}
		for _, f := range locFrames[sp.start:sp.end] {
			frames = append(frames, f)
		}
	}
	if len(frames)-start > maxDepth {
		st.frames = frames[:start]
		return -1, ft.depth(t, s)
	}
	st.frames = frames
	depth := len(frames) - start
	if id, ok := st.index[int32sKey(st.frames[start:])]; ok {
		st.frames = st.frames[:start]
		return id, depth
	}
	id := int32(len(st.spans))
	st.spans = append(st.spans, span{int32(start), int32(len(st.frames))})
	if st.index == nil {
		st.index = map[string]int32{}
	}
	// The key aliases frames, which only grows until reset: its bytes stay
	// as they are (an append that moves frames leaves them behind).
	st.index[int32sKey(st.frames[start:])] = id
	return id, depth
}

// stack returns the frames of stack id.
func (st *stackTable) stack(id int32) []int32 {
	sp := st.spans[id]
	return st.frames[sp.start:sp.end]
}

// depth returns the frames of sample s: one per line of its locations,
// or one for a location without lines.
func (ft *frameTable) depth(t *tables, s sample) int {
	depth := 0
	for _, li := range t.sampleLocs[s.locs.start:s.locs.end] {
		depth += ft.locSpans[li].len()
	}
	return depth
}

// int32sKey returns the bytes of s as a string, for a map key, without
// copying: s must not change while the key is in use.
func int32sKey(s []int32) string {
	if len(s) == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}
