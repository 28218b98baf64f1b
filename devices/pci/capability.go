package pci

import (
	"encoding/binary"
	"fmt"
)

// AddCapability appends a capability to the list in the legacy 256
// bytes and returns its offset. body is everything after the ID and
// next-pointer bytes; writable masks the driver-writable bits of body
// (nil: all read-only).
func (c *ConfigSpace) AddCapability(id byte, body, writable []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	off := c.nextCap
	n := 2 + len(body)
	if off+n > LegacyConfigSize {
		return 0, fmt.Errorf("pci: capability %#x (%d bytes) does not fit", id, n)
	}
	c.data[off] = id
	c.data[off+1] = 0
	copy(c.data[off+2:], body)
	copy(c.wmask[off+2:], writable)
	if c.lastCap == 0 {
		c.data[RegCapPtr] = byte(off)
		binary.LittleEndian.PutUint16(c.data[RegStatus:], binary.LittleEndian.Uint16(c.data[RegStatus:])|StatusCapList)
	} else {
		c.data[c.lastCap+1] = byte(off)
	}
	c.lastCap = off
	c.nextCap = (off + n + 3) &^ 3
	return off, nil
}

// Capability is one entry of a capability list.
type Capability struct {
	ID     byte
	Offset int
}

// Capabilities walks the list the way a driver does, through f, and
// stops at a loop or a pointer outside the header's capability area.
func Capabilities(f Function) []Capability {
	var b [2]byte
	f.ReadConfig(RegStatus, b[:])
	if binary.LittleEndian.Uint16(b[:])&StatusCapList == 0 {
		return nil
	}
	f.ReadConfig(RegCapPtr, b[:1])
	var caps []Capability
	seen := map[byte]bool{}
	for p := b[0] &^ 3; p >= 0x40 && !seen[p]; p = b[1] &^ 3 {
		seen[p] = true
		f.ReadConfig(uint64(p), b[:])
		caps = append(caps, Capability{ID: b[0], Offset: int(p)})
	}
	return caps
}
