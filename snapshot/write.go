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
func Write(path, vmmVersion string, st *State, ram [][]byte) (err error) {
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
	for _, r := range ram {
		for len(r) > 0 {
			n := min(len(r), len(zeroChunk))
			if !bytes.Equal(r[:n], zeroChunk[:n]) {
				if _, err := f.WriteAt(r[:n], off); err != nil {
					return fmt.Errorf("snapshot %s: guest RAM: %w", path, err)
				}
			}
			r, off = r[n:], off+int64(n)
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
