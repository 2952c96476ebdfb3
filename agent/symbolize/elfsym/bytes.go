package elfsym

import "bytes"

// sub returns b[off:off+n], or false when that range is not inside b.
func sub(b []byte, off, n uint64) ([]byte, bool) {
	if off > uint64(len(b)) || n > uint64(len(b))-off {
		return nil, false
	}
	return b[off : off+n], true
}

// cstring returns the NUL-terminated string at off in a string table, or
// nil when off is outside it. An unterminated string ends with the table.
func cstring(tab []byte, off uint64) []byte {
	if off >= uint64(len(tab)) {
		return nil
	}
	s := tab[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

// prefix2 returns up to the first two bytes of the NUL-terminated string at
// off, without scanning for its end; nil when off is outside the table.
func prefix2(tab []byte, off uint64) []byte {
	if off >= uint64(len(tab)) {
		return nil
	}
	s := tab[off:min(off+2, uint64(len(tab)))]
	switch {
	case s[0] == 0:
		return s[:0]
	case len(s) == 2 && s[1] == 0:
		return s[:1]
	}
	return s
}
