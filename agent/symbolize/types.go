package symbolize

// Frame is one function of a symbolized location, innermost (inlined) first.
type Frame struct {
	Function string
	File     string
	Line     int64
}

// Mapping identifies where an address lives, so that a server can symbolize
// later what the agent could not.
type Mapping struct {
	Start, Limit, Offset uint64
	File, BuildID        string
	Symbolized           bool // the agent could read the object: no point symbolizing again
}

// Location is an address with its mapping and, if resolved, its frames.
type Location struct {
	Mapping *Mapping // nil when no mapping is known
	Frames  []Frame
}
