package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// File is an opened, validated snapshot.
type File struct {
	f     *os.File
	path  string
	hdr   header
	State *State
}

// Open reads and checks the snapshot at path against want, the run's
// command line. Everything is checked before anything is returned: the
// magic, the format version, the sizes against the file's length, the
// checksum, the state section, and then -m, -smp and the machine. Each
// refusal is one line naming the mismatch.
func Open(path string, want Identity) (_ *File, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("snapshot %s: "+format, append([]any{path}, args...)...)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, bad("%v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, bad("not a regular file")
	}
	size := uint64(fi.Size())
	head := make([]byte, headerSize)
	if _, err := io.ReadFull(f, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if size >= uint64(len(Magic)) && string(head[:len(Magic)]) != Magic {
				return nil, bad("not a vmm snapshot (no %q at its start)", strings.TrimRight(Magic, "\x00"))
			}
			return nil, bad("truncated: %d bytes, shorter than the %d-byte header", size, headerSize)
		}
		return nil, bad("%v", err)
	}
	var h header
	if _, err := binary.Decode(head, le, &h); err != nil {
		return nil, bad("header: %v", err)
	}
	if string(h.Magic[:]) != Magic {
		return nil, bad("not a vmm snapshot (no %q at its start)", strings.TrimRight(Magic, "\x00"))
	}
	if h.Format != FormatVersion {
		return nil, bad("format version %d (written by vmm %s); this vmm reads version %d", h.Format, h.version(), FormatVersion)
	}
	if h.StateSize > maxStateSize || h.RAMOffset != ramOffset(h.StateSize) ||
		h.RAMSize == 0 || h.RAMSize%PageSize != 0 || h.RAMSize > maxRAMSize {
		return nil, bad("corrupt header (state %d bytes, RAM %d bytes at %d)", h.StateSize, h.RAMSize, h.RAMOffset)
	}
	switch end := h.RAMOffset + h.RAMSize; {
	case size < end:
		return nil, bad("truncated: %d bytes, the header says %d", size, end)
	case size > end:
		return nil, bad("%d bytes, the header says %d (appended to?)", size, end)
	}
	body := make([]byte, h.StateSize+checksumSize)
	if _, err := io.ReadFull(f, body); err != nil {
		return nil, bad("%v", err)
	}
	state, stored := body[:h.StateSize], body[h.StateSize:]
	sum := sha256.New()
	sum.Write(head)
	sum.Write(state)
	if string(sum.Sum(nil)) != string(stored) {
		return nil, bad("checksum mismatch: the header or state is corrupt")
	}
	st, err := DecodeState(state)
	if err != nil {
		return nil, bad("%v", err)
	}
	if st.MemSize != h.RAMSize {
		return nil, bad("corrupt: state says -m %s, RAM section holds %s", FormatSize(st.MemSize), FormatSize(h.RAMSize))
	}
	if err := st.match(want); err != nil {
		return nil, bad("%v", err)
	}
	return &File{f: f, path: path, hdr: h, State: st}, nil
}

// match names the first way the saved machine differs from want.
func (s *State) match(want Identity) error {
	switch {
	case s.MemSize != want.MemSize:
		return fmt.Errorf("saved with -m %s, this run has -m %s", FormatSize(s.MemSize), FormatSize(want.MemSize))
	case s.CPUs != want.CPUs:
		return fmt.Errorf("saved with -smp %d, this run has -smp %d", s.CPUs, want.CPUs)
	case s.Machine != want.Machine:
		a, b := diffExcerpt(s.Machine, want.Machine)
		return fmt.Errorf("saved with machine %q, this run has %q", a, b)
	}
	return nil
}

// diffExcerpt shortens two differing strings to where they differ.
func diffExcerpt(a, b string) (string, string) {
	const before, width = 20, 60
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	cut := func(s string) string {
		start := max(0, i-before)
		end := min(len(s), start+width)
		out := s[start:end]
		if start > 0 {
			out = "…" + out
		}
		if end < len(s) {
			out += "…"
		}
		return out
	}
	return cut(a), cut(b)
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// VMMVersion returns the version of the vmm that wrote the file.
func (f *File) VMMVersion() string { return f.hdr.version() }

// MapRAM maps n bytes of guest RAM starting at byte off of the RAM
// section, private and writable: pages are read from the file when the
// guest first touches them and copied only when it writes them. The
// file must not change while the mapping lives.
func (f *File) MapRAM(off, n uint64) ([]byte, error) {
	if off%PageSize != 0 || n == 0 || n%PageSize != 0 || off > f.hdr.RAMSize || n > f.hdr.RAMSize-off {
		return nil, fmt.Errorf("snapshot %s: RAM [%#x, +%#x) is not a page-aligned part of its %s", f.path, off, n, FormatSize(f.hdr.RAMSize))
	}
	b, err := unix.Mmap(int(f.f.Fd()), int64(f.hdr.RAMOffset+off), int(n),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: mmap RAM [%#x, +%#x): %w", f.path, off, n, err)
	}
	return b, nil
}

// Close closes the file; mappings made by MapRAM stay valid.
func (f *File) Close() error { return f.f.Close() }
