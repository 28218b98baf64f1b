package pci

import (
	"encoding/binary"
	"sync"
)

// Configuration mechanism #1: a 32-bit address register at 0xCF8 and a
// data window at 0xCFC-0xCFF, one device on the PIO bus.
const (
	ConfigIOPort = 0xcf8
	ConfigIOSize = 8
)

// ConfigIO is the 0xCF8/0xCFC device; offsets are relative to 0xCF8.
type ConfigIO struct {
	root *Root

	mu sync.Mutex
	// addr is the address register; guarded by mu.
	addr uint32
}

// ConfigIO returns the port I/O device for r, to put at ConfigIOPort.
func (r *Root) ConfigIO() *ConfigIO { return &ConfigIO{root: r} }

// Read handles an IN. The address register answers only 32-bit reads
// (as on QEMU's i440FX/Q35); the data window takes any size.
func (c *ConfigIO) Read(offset uint64, data []byte) {
	c.mu.Lock()
	addr := c.addr
	c.mu.Unlock()
	switch {
	case offset == 0 && len(data) == 4:
		binary.LittleEndian.PutUint32(data, addr)
	case offset >= 4 && offset+uint64(len(data)) <= ConfigIOSize && addr&(1<<31) != 0:
		bus, dev, fn, reg := decodeCF8(addr)
		c.root.access(bus, dev, fn, reg+offset-4, data, false)
	default:
		for i := range data {
			data[i] = 0xff
		}
	}
}

// Write handles an OUT; partial writes of the address register are
// dropped (Linux's type 1 probe writes a byte to 0xCFB and expects the
// address register to stay as it was).
func (c *ConfigIO) Write(offset uint64, data []byte) {
	c.mu.Lock()
	if offset == 0 && len(data) == 4 {
		c.addr = binary.LittleEndian.Uint32(data)
		c.mu.Unlock()
		return
	}
	addr := c.addr
	c.mu.Unlock()
	if offset >= 4 && offset+uint64(len(data)) <= ConfigIOSize && addr&(1<<31) != 0 {
		bus, dev, fn, reg := decodeCF8(addr)
		c.root.access(bus, dev, fn, reg+offset-4, data, true)
	}
}

// decodeCF8 splits an address register value; bits 27:24 extend the
// register number past 255, as AMD's extension does.
func decodeCF8(a uint32) (bus, dev, fn int, reg uint64) {
	return int(a >> 16 & 0xff), int(a >> 11 & 0x1f), int(a >> 8 & 7), uint64(a&0xfc) | uint64(a>>24&0xf)<<8
}
