package pprofconv

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// This file decodes pprof's protobuf (profile.proto) into tables, in one
// pass and without building an object per entity. It accepts and rejects
// what github.com/google/pprof/profile.ParseUncompressed does (see
// FuzzDecodeMatchesPprof), whose decoder is lenient in ways a generic
// protobuf decoder is not, and relied upon: unknown fields and field
// number 0 are skipped, a varint may have 10 bytes whatever the last one
// holds, a message field that occurs twice replaces the first (period_type)
// rather than merging, a second non-zero time_nanos is an error (two
// concatenated profiles). String indexes are checked after the whole
// message is read, as the string table usually comes last.

// Wire types (protowire's numbering).
const (
	wireVarint  = uint64(protowire.VarintType)
	wireFixed64 = uint64(protowire.Fixed64Type)
	wireBytes   = uint64(protowire.BytesType)
	wireFixed32 = uint64(protowire.Fixed32Type)
)

// key returns the tag of a field: its number and wire type.
func key(field int, wire uint64) uint64 { return uint64(field)<<3 | wire }

var (
	errVarint       = errors.New("bad varint")
	errTruncated    = errors.New("not enough data")
	errLength       = errors.New("too much data")
	errTypeMismatch = errors.New("type mismatch")
	errStringIndex  = errors.New("malformed profile format") // pprof's words for a bad string index
	errConcat       = errors.New("concatenated profiles detected")
	errStringTable0 = errors.New("string_table[0] must be ''")
)

// uvarint decodes the varint at b[i:] and returns it and the index after
// it, or i < 0 if b ends first or the varint is longer than 10 bytes.
// Bits past the 64th are dropped, as pprof does. Hot loops inline the
// one-byte case (most tags, many values) and call uvarintLong for others.
func uvarint(b []byte, i int) (uint64, int) {
	if i < len(b) && b[i] < 0x80 {
		return uint64(b[i]), i + 1
	}
	return uvarintLong(b, i)
}

// uvarintLong is uvarint where b[i] is not a one-byte varint: one of two
// bytes or more, or none (i >= len(b)).
func uvarintLong(b []byte, i int) (uint64, int) {
	if i+1 < len(b) && b[i+1] < 0x80 { // two bytes: ids and indexes up to 16383
		return uint64(b[i]&0x7f) | uint64(b[i+1])<<7, i + 2
	}
	if i >= 0 && len(b)-i >= maxVarintLen {
		return uvarint10(b[i:i+maxVarintLen:i+maxVarintLen], i)
	}
	var x uint64
	for n := 0; n < 10; n++ {
		if i+n >= len(b) {
			return 0, -1
		}
		c := b[i+n]
		x |= uint64(c&0x7f) << (7 * n)
		if c < 0x80 {
			return x, i + n + 1
		}
	}
	return 0, -1
}

// maxVarintLen is the most bytes pprof reads of a varint.
const maxVarintLen = 10

// uvarint10 is uvarintLong where p, b[i:i+10], is whole: unrolled, with
// one bounds check for the ten bytes rather than one per byte (addresses
// and values are varints of three bytes or more).
func uvarint10(p []byte, i int) (uint64, int) {
	_ = p[9]
	x := uint64(p[0] & 0x7f) // p[0] >= 0x80: uvarint read it otherwise
	for n := 1; n < maxVarintLen; n++ {
		c := uint64(p[n])
		x |= (c & 0x7f) << (7 * n)
		if c < 0x80 {
			return x, i + n + 1
		}
	}
	return 0, -1
}

// bytesField reads a length-delimited value at b[i:] (after its tag).
func bytesField(b []byte, i int) ([]byte, int, error) {
	if i >= len(b) {
		return nil, -1, errVarint
	}
	n := uint64(b[i])
	if n < 0x80 {
		i++
	} else if n, i = uvarintLong(b, i); i < 0 {
		return nil, i, errVarint
	}
	if n > uint64(len(b)-i) {
		return nil, -1, errLength
	}
	return b[i : i+int(n) : i+int(n)], i + int(n), nil
}

// shortField is bytesField's inlined fast path, for a value shorter than
// 128 bytes (lines, labels, most locations and functions): it returns
// j < 0 for any other, which bytesField then reads.
func shortField(b []byte, i int) (data []byte, j int) {
	if i < len(b) && int(b[i]) < len(b)-i && b[i] < 0x80 {
		j = i + 1 + int(b[i])
		return b[i+1 : j : j], j
	}
	return nil, -1
}

// skipField skips the value at b[i:] of a field its message does not
// know, of any wire type but groups (which pprof rejects too). A field
// numbered up to known is a known one of the wrong wire type: an error.
func skipField(b []byte, i int, tag uint64, known int) (int, error) {
	switch tag & 7 {
	case wireVarint:
		if _, i = uvarint(b, i); i < 0 {
			return i, errVarint
		}
	case wireFixed64:
		if len(b)-i < 8 {
			return -1, errTruncated
		}
		i += 8
	case wireBytes:
		var err error
		if _, i, err = bytesField(b, i); err != nil {
			return i, err
		}
	case wireFixed32:
		if len(b)-i < 4 {
			return -1, errTruncated
		}
		i += 4
	default:
		return -1, fmt.Errorf("unknown wire type: %d", tag&7)
	}
	if n := tag >> 3; n != 0 && n <= uint64(known) {
		return -1, errTypeMismatch
	}
	return i, nil
}

// decoder decodes one profile into t. lo and hi bound the string indexes
// pprof would look up: they are checked once the string table is known.
type decoder struct {
	t      *tables
	lo, hi int64
	// Optional string fields not kept: pprof looks up only the last value.
	dropFrames, keepFrames, defaultSampleType, docURL int64
	prevLabels                                        span // the last sample's labels (shareLabels)
}

func (d *decoder) str(i int64) {
	d.lo, d.hi = min(d.lo, i), max(d.hi, i)
}

// decodeWire decodes an uncompressed pprof protobuf into t.
func decodeWire(data []byte, t *tables) error {
	d := decoder{t: t}
	if err := d.profile(data); err != nil {
		return err
	}
	for _, st := range t.sampleTypes {
		d.str(st.typ)
		d.str(st.unit)
	}
	d.str(t.periodType.typ)
	d.str(t.periodType.unit)
	d.str(d.dropFrames)
	d.str(d.keepFrames)
	d.str(d.defaultSampleType)
	d.str(d.docURL)
	if d.lo < 0 || d.hi >= int64(len(t.strs)) {
		return errStringIndex
	}
	return nil
}

// Profile fields (profile.proto).
const (
	fSampleType        = 1
	fSample            = 2
	fMapping           = 3
	fLocation          = 4
	fFunction          = 5
	fStringTable       = 6
	fDropFrames        = 7
	fKeepFrames        = 8
	fTimeNanos         = 9
	fDurationNanos     = 10
	fPeriodType        = 11
	fPeriod            = 12
	fComment           = 13
	fDefaultSampleType = 14
	fDocURL            = 15
)

func (d *decoder) profile(b []byte) error {
	t := d.t
	for i := 0; i < len(b); {
		tag := uint64(b[i])
		if tag < 0x80 {
			i++
		} else if tag, i = uvarintLong(b, i); i < 0 {
			return errVarint
		}
		var v uint64    // a varint field's value
		var data []byte // a length-delimited field's value
		var err error
		switch tag & 7 {
		case wireVarint:
			if v, i = uvarint(b, i); i < 0 {
				return errVarint
			}
		case wireBytes:
			var j int
			if data, j = shortField(b, i); j >= 0 {
				i = j
			} else if data, i, err = bytesField(b, i); err != nil {
				return err
			}
		}
		switch tag {
		case key(fSampleType, wireBytes):
			var vt valueType
			err = decodeValueType(data, &vt)
			t.sampleTypes = append(t.sampleTypes, vt)
		case key(fSample, wireBytes):
			err = d.sample(data)
		case key(fMapping, wireBytes):
			err = d.mapping(data)
		case key(fLocation, wireBytes):
			err = d.location(data)
		case key(fFunction, wireBytes):
			err = d.function(data)
		case key(fStringTable, wireBytes):
			t.strs = append(t.strs, bytesString(data))
			if t.strs[0] != "" {
				err = errStringTable0
			}
		case key(fDropFrames, wireVarint):
			d.dropFrames = int64(v)
		case key(fKeepFrames, wireVarint):
			d.keepFrames = int64(v)
		case key(fTimeNanos, wireVarint):
			if t.timeNanos != 0 {
				err = errConcat
			}
			t.timeNanos = int64(v)
		case key(fDurationNanos, wireVarint):
			t.durationNanos = int64(v)
		case key(fPeriodType, wireBytes):
			t.periodType = valueType{} // a second period_type replaces the first
			err = decodeValueType(data, &t.periodType)
		case key(fPeriod, wireVarint):
			t.period = int64(v)
		case key(fComment, wireVarint):
			d.str(int64(v))
		case key(fComment, wireBytes):
			err = packed(data, func(v uint64) { d.str(int64(v)) })
		case key(fDefaultSampleType, wireVarint):
			d.defaultSampleType = int64(v)
		case key(fDocURL, wireVarint):
			d.docURL = int64(v)
		default:
			switch {
			case tag>>3 == fTimeNanos && t.timeNanos != 0:
				err = errConcat
			case tag&7 == wireVarint || tag&7 == wireBytes: // value read above
				if n := tag >> 3; n != 0 && n <= fDocURL {
					err = errTypeMismatch
				}
			default:
				i, err = skipField(b, i, tag, fDocURL)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// bytesString returns b as a string without copying: the string aliases
// the protobuf buffer, which must not change while the string is used.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// packed calls fn with each varint of a packed repeated field.
func packed(b []byte, fn func(uint64)) error {
	for i := 0; i < len(b); {
		var v uint64
		if v, i = uvarint(b, i); i < 0 {
			return errVarint
		}
		fn(v)
	}
	return nil
}

// The message decoders below share a shape: read a tag, then a known
// field's value if the wire type is the field's; anything else goes to
// skipField. Fields are few and small, so most are read into an array by
// field number.

func decodeValueType(b []byte, vt *valueType) error {
	var f [3]uint64 // by field number
	if err := varintFields(b, f[:]); err != nil {
		return err
	}
	vt.typ, vt.unit = int64(f[1]), int64(f[2])
	return nil
}

// varintFields decodes a message whose fields are all varints numbered
// from 1 to len(f)-1, into f.
func varintFields(b []byte, f []uint64) error {
	var err error
	for i := 0; i < len(b); {
		tag := uint64(b[i])
		if tag < 0x80 {
			i++
		} else if tag, i = uvarintLong(b, i); i < 0 {
			return errVarint
		}
		if n := tag >> 3; tag&7 == wireVarint && n >= 1 && n < uint64(len(f)) {
			if i >= len(b) {
				return errVarint
			}
			v := uint64(b[i])
			switch {
			case v < 0x80:
				i++
			case i+1 < len(b) && b[i+1] < 0x80: // ids and string indexes, inlined
				v = v&0x7f | uint64(b[i+1])<<7
				i += 2
			default:
				if v, i = uvarintLong(b, i); i < 0 {
					return errVarint
				}
			}
			f[n] = v
			continue
		}
		if i, err = skipField(b, i, tag, len(f)-1); err != nil {
			return err
		}
	}
	return nil
}

// twoVarints decodes a message that is exactly field 1 then field 2, both
// varints: what pprof writes for most labels (key, str) and lines
// (function_id, line). It is varintFields' result for such a message
// without its loop; ok is false for any other message, which varintFields
// then decodes.
func twoVarints(b []byte) (f1, f2 uint64, ok bool) {
	if len(b) < 4 || b[0] != byte(key(1, wireVarint)) {
		return 0, 0, false
	}
	// One-byte varints inline, as in the other hot loops: uvarint is not
	// inlined.
	i := 2
	if f1 = uint64(b[1]); f1 >= 0x80 {
		if f1, i = uvarintLong(b, 1); i < 0 {
			return 0, 0, false
		}
	}
	if i+1 >= len(b) || b[i] != byte(key(2, wireVarint)) {
		return 0, 0, false
	}
	if f2, i = uint64(b[i+1]), i+2; f2 >= 0x80 {
		if f2, i = uvarintLong(b, i-1); i < 0 {
			return 0, 0, false
		}
	}
	return f1, f2, i == len(b)
}

// sample decodes a Sample: location ids (1), values (2), labels (3).
func (d *decoder) sample(b []byte) error {
	t := d.t
	s := sample{
		locs:   span{start: int32(len(t.sampleLocs))},
		values: span{start: int32(len(t.values))},
		labels: span{start: int32(len(t.labels))},
	}
	var err error
	for i := 0; i < len(b); {
		var v uint64
		tag := uint64(b[i])
		if tag < 0x80 {
			i++
		} else if tag, i = uvarintLong(b, i); i < 0 {
			return errVarint
		}
		var data []byte
		switch tag {
		case key(1, wireBytes):
			if data, i, err = bytesField(b, i); err != nil {
				return err
			}
			if err = appendPackedLocIDs(t, data); err != nil {
				return err
			}
		case key(2, wireBytes):
			if data, i, err = bytesField(b, i); err != nil {
				return err
			}
			if t.values, err = appendPackedInt(t.values, data); err != nil {
				return err
			}
		case key(3, wireBytes):
			var j int
			if data, j = shortField(b, i); j >= 0 {
				i = j
			} else if data, i, err = bytesField(b, i); err != nil {
				return err
			}
			if err = d.label(data); err != nil {
				return err
			}
		case key(1, wireVarint):
			if v, i = uvarint(b, i); i < 0 {
				return errVarint
			}
			t.appendLocID(v)
		case key(2, wireVarint):
			if v, i = uvarint(b, i); i < 0 {
				return errVarint
			}
			t.values = append(t.values, int64(v))
		default:
			if i, err = skipField(b, i, tag, 3); err != nil {
				return err
			}
		}
	}
	if len(t.sampleLocs) > math.MaxInt32 || len(t.values) > math.MaxInt32 {
		return fmt.Errorf("more than %d locations or values in samples", math.MaxInt32)
	}
	s.locs.end, s.values.end, s.labels.end = int32(len(t.sampleLocs)), int32(len(t.values)), int32(len(t.labels))
	s.labels = d.shareLabels(s.labels)
	t.samples = append(t.samples, s)
	return nil
}

// shareLabels returns the previous sample's labels instead of labs, just
// appended, when they are the same: an agent writes the same labels on
// every sample of a process, and one copy of them stays in cache where
// thousands would not.
func (d *decoder) shareLabels(labs span) span {
	t, prev := d.t, d.prevLabels
	if labs.len() == 0 || labs.len() != prev.len() ||
		!slices.Equal(t.labels[labs.start:labs.end], t.labels[prev.start:prev.end]) {
		d.prevLabels = labs
		return labs
	}
	t.labels = t.labels[:labs.start]
	return prev
}

// appendPackedLocIDs appends the location ids of a packed field to
// t.sampleLocs: the hottest loop of decoding.
func appendPackedLocIDs(t *tables, b []byte) error {
	dst := t.sampleLocs
	for i := 0; i < len(b); {
		v := uint32(b[i])
		switch {
		case v < 0x80:
			i++
		case i+1 < len(b) && b[i+1] < 0x80: // ids up to 16383, inlined: the common case
			v = v&0x7f | uint32(b[i+1])<<7
			i += 2
		default:
			var id uint64
			if id, i = uvarintLong(b, i); i < 0 {
				t.sampleLocs = dst
				return errVarint
			}
			t.sampleLocs = dst
			t.appendLocID(id)
			dst = t.sampleLocs
			continue
		}
		dst = append(dst, int32(v))
	}
	t.sampleLocs = dst
	return nil
}

func appendPackedInt(dst []int64, b []byte) ([]int64, error) {
	for i := 0; i < len(b); {
		v := uint64(b[i])
		if v < 0x80 {
			i++
		} else if v, i = uvarintLong(b, i); i < 0 {
			return dst, errVarint
		}
		dst = append(dst, int64(v))
	}
	return dst, nil
}

// label decodes a Label: key (1), str (2), num (3), num_unit (4). pprof
// looks up the key always, str if non-zero, else num_unit if that or num
// is non-zero; only string labels are kept.
func (d *decoder) label(b []byte) error {
	var f [5]uint64 // by field number
	if k, str, ok := twoVarints(b); ok {
		f[1], f[2] = k, str
	} else if err := varintFields(b, f[:]); err != nil {
		return err
	}
	k, str, num, unit := int64(f[1]), int64(f[2]), int64(f[3]), int64(f[4])
	d.str(k)
	switch {
	case str != 0:
		d.str(str)
		d.t.labels = append(d.t.labels, label{k, str})
	case num != 0 || unit != 0:
		if unit != 0 {
			d.str(unit)
		}
	}
	return nil
}

// mapping decodes a Mapping: id (1), memory_start (2), memory_limit (3),
// file_offset (4), filename (5), build_id (6), has_* flags (7-10).
func (d *decoder) mapping(b []byte) error {
	var f [11]uint64 // by field number
	if err := varintFields(b, f[:]); err != nil {
		return err
	}
	m := mapping{id: f[1], start: f[2], offset: f[4], file: int64(f[5]), buildID: int64(f[6])}
	d.str(m.file)
	d.str(m.buildID)
	d.t.mappings = append(d.t.mappings, m)
	return nil
}

// location decodes a Location: id (1), mapping_id (2), address (3), lines
// (4), is_folded (5).
func (d *decoder) location(b []byte) error {
	t := d.t
	var f [6]uint64 // by field number
	start := len(t.lines)
	var err error
	for i := 0; i < len(b); {
		tag := uint64(b[i])
		if tag < 0x80 {
			i++
		} else if tag, i = uvarintLong(b, i); i < 0 {
			return errVarint
		}
		if n := tag >> 3; tag&7 == wireVarint && n >= 1 && n <= 5 && n != 4 {
			if i >= len(b) {
				return errVarint
			}
			v := uint64(b[i])
			switch {
			case v < 0x80:
				i++
			case i+1 < len(b) && b[i+1] < 0x80: // ids and string indexes, inlined
				v = v&0x7f | uint64(b[i+1])<<7
				i += 2
			default:
				if v, i = uvarintLong(b, i); i < 0 {
					return errVarint
				}
			}
			f[n] = v
			continue
		}
		if tag != key(4, wireBytes) {
			if i, err = skipField(b, i, tag, 5); err != nil {
				return err
			}
			continue
		}
		data, j := shortField(b, i)
		if j >= 0 {
			i = j
		} else if data, i, err = bytesField(b, i); err != nil {
			return err
		}
		var lf [4]uint64 // Line: function_id (1), line (2), column (3)
		if fn, ln, ok := twoVarints(data); ok {
			lf[1], lf[2] = fn, ln
		} else if err := varintFields(data, lf[:]); err != nil {
			return err
		}
		t.lines = append(t.lines, line{functionID: lf[1], line: int64(lf[2])})
	}
	if len(t.lines) > math.MaxInt32 {
		return fmt.Errorf("more than %d lines", math.MaxInt32)
	}
	t.locations = append(t.locations, location{id: f[1], mappingID: f[2], address: f[3], lines: span{int32(start), int32(len(t.lines))}})
	return nil
}

// function decodes a Function: id (1), name (2), system_name (3),
// filename (4), start_line (5).
func (d *decoder) function(b []byte) error {
	var f [6]uint64 // by field number
	if err := varintFields(b, f[:]); err != nil {
		return err
	}
	fn := function{id: f[1], name: int64(f[2]), systemName: int64(f[3]), filename: int64(f[4])}
	d.str(fn.name)
	d.str(fn.systemName)
	d.str(fn.filename)
	d.t.functions = append(d.t.functions, fn)
	return nil
}
