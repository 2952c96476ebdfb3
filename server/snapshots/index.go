package snapshots

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxIndexLine bounds one index record: label sets are bounded, so a
// longer line is damage, not data.
const maxIndexLine = 16 << 20

// readIndex reads the records of the index at path, one JSON object per
// line. clean is false when something had to be skipped (a line torn by a
// crash mid-append, a damaged line) and the index should be rewritten; a
// missing index is an empty one.
func readIndex(path string) (metas []*Meta, clean bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("open index: %w", err)
	}
	defer f.Close()
	clean = true
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			m, ok := parseRecord(line, err == nil)
			if ok {
				metas = append(metas, m)
			}
			clean = clean && ok
		}
		if errors.Is(err, io.EOF) {
			return metas, clean, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read index: %w", err)
		}
	}
}

// parseRecord parses one index line; a line without its newline was torn
// by a crash before the append was acknowledged, so it does not count.
func parseRecord(line []byte, complete bool) (*Meta, bool) {
	if !complete || len(line) > maxIndexLine {
		return nil, false
	}
	var m Meta
	if err := json.Unmarshal(line, &m); err != nil || m.ID == "" {
		return nil, false
	}
	return &m, true
}

// appendIndex appends m's record to the index and syncs it. A failed
// append is cut off again, so that the next record starts on a line of its
// own.
func appendIndex(path string, m *Meta) error {
	line, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode index record: %w", err)
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat index: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Truncate(info.Size())
		return fmt.Errorf("append to index: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Truncate(info.Size())
		return fmt.Errorf("sync index: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) { // a new file: its directory entry too
		return syncDir(filepath.Dir(path))
	}
	return nil
}

// writeIndex replaces the index at path with metas, atomically.
func writeIndex(path string, metas []*Meta) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // one record per line
	for _, m := range metas {
		if err := enc.Encode(m); err != nil {
			return fmt.Errorf("encode index record: %w", err)
		}
	}
	if err := writeFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("rewrite index: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path so that path holds either its old
// content or all of data, also after a crash: temporary file, fsync,
// rename, fsync of the directory. Temporary files end in tmpSuffix, which
// Open removes.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*"+tmpSuffix)
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory to sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
