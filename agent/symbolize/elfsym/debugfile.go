package elfsym

import (
	"hash/crc32"
	"path/filepath"
	"strings"
)

// DebugFileCandidates lists where the separate debug file of the binary at
// path may live, in the order gdb and perf try them:
//
//	<root>/usr/lib/debug/.build-id/ab/cdef….debug
//	<root>/<dir>/<debugLink>
//	<root>/<dir>/.debug/<debugLink>
//	<root>/usr/lib/debug/<dir>/<debugLink>
//
// path is the binary's path as the process sees it (from /proc/PID/maps) and
// root the process's root, such as /proc/PID/root, so containers resolve in
// their own filesystem. buildID and debugLink may be empty. Both come from
// untrusted files: a build ID that is not hex and a link that is not a plain
// file name are ignored, and no candidate leaves root.
func DebugFileCandidates(root, path, buildID, debugLink string) []string {
	if root == "" {
		root = "/"
	}
	var out []string
	if len(buildID) > 2 && isHex(buildID) {
		id := strings.ToLower(buildID)
		out = append(out, filepath.Join(root, "usr/lib/debug/.build-id", id[:2], id[2:]+".debug"))
	}
	if debugLink == "" || debugLink == "." || debugLink == ".." || strings.ContainsAny(debugLink, "/\x00") {
		return out
	}
	// Cleaning against "/" first drops any ".." that would climb out of root.
	dir := filepath.Dir(filepath.Clean("/" + path))
	return append(out,
		filepath.Join(root, dir, debugLink),
		filepath.Join(root, dir, ".debug", debugLink),
		filepath.Join(root, "usr/lib/debug", dir, debugLink),
	)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// DebugFileMatches reports whether debug, a candidate from
// DebugFileCandidates, belongs to main: by build ID when main has one, else
// by the CRC-32 that main's .gnu_debuglink records (which reads all of debug).
func DebugFileMatches(main, debug *File) bool {
	if id := main.BuildID(); id != "" {
		return id == debug.BuildID()
	}
	_, crc, ok := main.DebugLink()
	return ok && crc32.ChecksumIEEE(debug.data) == crc
}
