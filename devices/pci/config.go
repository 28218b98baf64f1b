// Package pci is a PCI host bridge for bus 0: configuration mechanism #1
// (ports 0xCF8/0xCFC), an ECAM window, type 0 configuration spaces with
// read-only and write-1-to-clear masks, BARs, capabilities and MSI-X.
// It knows no device type; devices (the virtio-pci transport) build
// their functions from ConfigSpace and MSIX.
package pci

import (
	"encoding/binary"
	"sync"
)

// Sizes of a function's configuration space: 256 bytes through port
// I/O, 4 KiB through ECAM.
const (
	LegacyConfigSize = 0x100
	ConfigSize       = 0x1000
)

// Type 0 header offsets (PCI Local Bus 3.0 §6.1).
const (
	RegVendorID      = 0x00
	RegDeviceID      = 0x02
	RegCommand       = 0x04
	RegStatus        = 0x06
	RegRevision      = 0x08
	RegClass         = 0x09 // prog-if, subclass, class: 3 bytes
	RegCacheLine     = 0x0c
	RegLatency       = 0x0d
	RegHeaderType    = 0x0e
	RegBAR0          = 0x10
	RegSubsysVendor  = 0x2c
	RegSubsysID      = 0x2e
	RegROM           = 0x30
	RegCapPtr        = 0x34
	RegInterruptLine = 0x3c
	RegInterruptPin  = 0x3d
)

// Command and status register bits.
const (
	CommandIO           = 1 << 0
	CommandMemory       = 1 << 1
	CommandBusMaster    = 1 << 2
	CommandParity       = 1 << 6
	CommandSERR         = 1 << 8
	CommandINTxDisable  = 1 << 10
	StatusInterrupt     = 1 << 3
	StatusCapList       = 1 << 4
	commandWritable     = CommandIO | CommandMemory | CommandBusMaster | CommandParity | CommandSERR | CommandINTxDisable
	statusWriteOneClear = 0xf900 // error bits 8 and 11-15
)

// Function is one PCI function's configuration space as the host bridge
// sees it: offset < ConfigSize, len(data) 1, 2 or 4, naturally aligned
// (the bridge splits anything else into bytes).
type Function interface {
	ReadConfig(offset uint64, data []byte)
	WriteConfig(offset uint64, data []byte)
}

// Header is the identity of a type 0 function.
type Header struct {
	VendorID, DeviceID uint16
	Revision           uint8
	Class              uint32 // class<<16 | subclass<<8 | prog-if
	SubsysVendorID     uint16
	SubsysID           uint16
	InterruptPin       uint8 // 0 none, 1 INTA# … 4 INTD#
}

// ConfigSpace is a type 0 configuration space held in memory, with a
// mask of the bits the driver may write and a mask of the bits a write
// of one clears. Reads never have side effects; a device that needs to
// see writes wraps it and inspects the registers afterwards.
type ConfigSpace struct {
	mu sync.Mutex
	// data, wmask and w1c are guarded by mu.
	data  [ConfigSize]byte
	wmask [ConfigSize]byte
	w1c   [ConfigSize]byte
	// lastCap is the offset of the last capability (0: none), nextCap the
	// next free offset for one; guarded by mu.
	lastCap, nextCap int
}

// NewConfigSpace returns a type 0 header with h's identity, memory and
// I/O decode off and no BARs or capabilities.
func NewConfigSpace(h Header) *ConfigSpace {
	c := &ConfigSpace{nextCap: 0x40}
	le := binary.LittleEndian
	le.PutUint16(c.data[RegVendorID:], h.VendorID)
	le.PutUint16(c.data[RegDeviceID:], h.DeviceID)
	c.data[RegRevision] = h.Revision
	c.data[RegClass], c.data[RegClass+1], c.data[RegClass+2] = byte(h.Class), byte(h.Class>>8), byte(h.Class>>16)
	le.PutUint16(c.data[RegSubsysVendor:], h.SubsysVendorID)
	le.PutUint16(c.data[RegSubsysID:], h.SubsysID)
	c.data[RegInterruptPin] = h.InterruptPin
	le.PutUint16(c.wmask[RegCommand:], commandWritable)
	le.PutUint16(c.w1c[RegStatus:], statusWriteOneClear)
	c.wmask[RegCacheLine], c.wmask[RegLatency] = 0xff, 0xff
	if h.InterruptPin != 0 {
		c.wmask[RegInterruptLine] = 0xff
	} else {
		c.data[RegInterruptLine] = 0xff // no interrupt
	}
	return c
}

// ReadConfig copies the bytes at offset; bytes past the space read as ones.
func (c *ConfigSpace) ReadConfig(offset uint64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range data {
		if o := offset + uint64(i); o < ConfigSize {
			data[i] = c.data[o]
		} else {
			data[i] = 0xff
		}
	}
}

// WriteConfig stores the writable bits of data and clears the
// write-one-to-clear bits it has set.
func (c *ConfigSpace) WriteConfig(offset uint64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, v := range data {
		o := offset + uint64(i)
		if o >= ConfigSize {
			return
		}
		c.data[o] = c.data[o]&^c.wmask[o] | v&c.wmask[o]
		c.data[o] &^= v & c.w1c[o]
	}
}

// Load16 and Load32 read a register as the device sees it.
func (c *ConfigSpace) Load16(offset int) uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return binary.LittleEndian.Uint16(c.data[offset:])
}

func (c *ConfigSpace) Load32(offset int) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return binary.LittleEndian.Uint32(c.data[offset:])
}

// Store sets bytes as the device, ignoring the masks (for read-only
// registers the device updates, like the interrupt status bit).
func (c *ConfigSpace) Store(offset int, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	copy(c.data[offset:], data)
}

// SetWritable makes the bits of mask at offset writable by the driver.
func (c *ConfigSpace) SetWritable(offset int, mask []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	copy(c.wmask[offset:], mask)
}

// Command returns the command register.
func (c *ConfigSpace) Command() uint16 { return c.Load16(RegCommand) }

// SetInterruptStatus sets or clears the status register's INTx status bit.
func (c *ConfigSpace) SetInterruptStatus(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		c.data[RegStatus] |= StatusInterrupt
	} else {
		c.data[RegStatus] &^= StatusInterrupt
	}
}

// overlaps reports whether an access [offset, offset+n) touches
// [reg, reg+size).
func overlaps(offset uint64, n int, reg, size uint64) bool {
	return offset < reg+size && reg < offset+uint64(n)
}

// Overlaps reports whether a config access touches a register; devices
// use it to decide which registers a write changed.
func Overlaps(offset uint64, data []byte, reg, size uint64) bool {
	return overlaps(offset, len(data), reg, size)
}
