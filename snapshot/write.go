package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

// zeroChunk is compared against RAM to leave all-zero runs as holes.
var zeroChunk = make([]byte, 64<<10)

// Write writes a snapshot of st and ram (the guest RAM regions in
// address order, whose sizes add up to st.MemSize) to path. RAM is
// written straight from the mapping, never copied. The file appears
// under path only once it is complete: it is written beside it and
// renamed, so a failed save leaves no half snapshot to restore from.
func Write(path, vmmVersion string, st *State, ram [][]byte) error {
	return WriteSparse(path, vmmVersion, st, ram, nil)
}

// WriteSparse is Write where the caller knows pages that are zero
// without reading them: untouched[i][p] marks page p of ram[i] (for
// instance a page of a private anonymous mapping that was never
// written, see /proc/self/pagemap). Reading such a page would map it,
// which for a large guest that touched little costs more than the rest
// of the save. untouched, or any of its entries, may be nil.
func WriteSparse(path, vmmVersion string, st *State, ram [][]byte, untouched [][]bool) (err error) {
	state, err := st.Encode()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	var total uint64
	for _, r := range ram {
		total += uint64(len(r))
	}
	if total != st.MemSize || total%PageSize != 0 {
		return fmt.Errorf("snapshot %s: %d bytes of RAM regions for -m %s", path, total, FormatSize(st.MemSize))
	}
	h := header{Format: FormatVersion, StateSize: uint64(len(state)),
		RAMOffset: ramOffset(uint64(len(state))), RAMSize: total}
	copy(h.Magic[:], Magic)
	if len(vmmVersion) > len(h.VMMVersion) {
		vmmVersion = vmmVersion[:len(h.VMMVersion)]
	}
	copy(h.VMMVersion[:], vmmVersion)
	head, err := binary.Append(nil, le, &h)
	if err != nil {
		return fmt.Errorf("snapshot %s: header: %w", path, err)
	}
	sum := sha256.New()
	sum.Write(head)
	sum.Write(state)

	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	meta := append(append(head, state...), sum.Sum(nil)...)
	if _, err := f.WriteAt(meta, 0); err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	off := int64(h.RAMOffset)
	for i, r := range ram {
		var skip []bool
		if i < len(untouched) && len(untouched[i]) == len(r)/PageSize {
			skip = untouched[i]
		}
		for pos := 0; pos < len(r); {
			n := min(len(r)-pos, len(zeroChunk))
			if !allTrue(skip, pos/PageSize, (pos+n)/PageSize) && !bytes.Equal(r[pos:pos+n], zeroChunk[:n]) {
				if _, err := f.WriteAt(r[pos:pos+n], off); err != nil {
					return fmt.Errorf("snapshot %s: guest RAM: %w", path, err)
				}
			}
			pos, off = pos+n, off+int64(n)
		}
	}
	if err := f.Truncate(off); err != nil { // the trailing hole, if any
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("snapshot %s: %w", path, err)
	}
	return nil
}

// allTrue reports whether b[from:to] are all true (false for a nil b).
func allTrue(b []bool, from, to int) bool {
	if b == nil {
		return false
	}
	for _, v := range b[from:to] {
		if !v {
			return false
		}
	}
	return true
}
