// Package snapshot is vmm's snapshot file: a versioned header, the
// machine's state section, a checksum over both, and guest RAM at a
// page-aligned offset so a restore can map it MAP_PRIVATE and pay only
// for the pages the guest touches (QEMU 9's mapped-ram and Firecracker's
// File memory backend are the models).
//
//	0            header (128 bytes, little-endian, below)
//	128          state section (StateSize bytes, state.go)
//	128+S        SHA-256 of header and state section (32 bytes)
//	RAMOffset    guest RAM, RAMSize bytes: the low region, then the one
//	             above 4 GiB; all-zero runs are left as holes
package snapshot

import (
	"fmt"
	"strings"
)

// Magic starts every snapshot file.
const Magic = "vmmsnap\x00"

// FormatVersion is the layout of the header and state section. Change
// it with any change to either: a file of another version is refused
// (TestStateGolden fails when the encoding changes and this does not).
const FormatVersion = 1

// PageSize is the alignment of the RAM section.
const PageSize = 4096

const (
	headerSize   = 128
	checksumSize = 32
	// maxStateSize bounds the state section read into memory: 256 vCPUs
	// at ~10 KiB each plus device state is far below it.
	maxStateSize = 256 << 20
	// maxRAMSize keeps offset arithmetic far from overflow (1 PiB).
	maxRAMSize = 1 << 50
)

// header is the file's first 128 bytes.
type header struct {
	Magic      [8]byte
	Format     uint32
	_          uint32
	StateSize  uint64
	RAMOffset  uint64
	RAMSize    uint64
	VMMVersion [64]byte // NUL-padded
	_          [24]byte
}

func (h *header) version() string {
	v, _, _ := strings.Cut(string(h.VMMVersion[:]), "\x00")
	return strings.ToValidUTF8(v, "?")
}

// ramOffset is where RAM starts after a state section of n bytes.
func ramOffset(n uint64) uint64 {
	end := headerSize + n + checksumSize
	return (end + PageSize - 1) &^ (PageSize - 1)
}

// FormatSize writes n bytes the way -m is written: 512M, 2G, or bytes.
func FormatSize(n uint64) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n != 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n != 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprint(n)
}
