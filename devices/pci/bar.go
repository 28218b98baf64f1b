package pci

import (
	"encoding/binary"
	"fmt"
)

// BARKind is what a base address register decodes.
type BARKind int

const (
	BARMem32 BARKind = iota
	BARMem64
	BARIO
)

// BAR describes one base address register. Size is a power of two (at
// least 16 bytes for memory, 4 for I/O); Addr is where firmware (the
// caller) places it, aligned to Size.
type BAR struct {
	Kind         BARKind
	Size         uint64
	Prefetchable bool
	Addr         uint64
}

// SetBAR programs BAR i; a 64-bit BAR takes registers i and i+1. Sizing
// works through the write mask: the address bits below Size are read-only
// zero, so writing all ones reads back the size mask.
func (c *ConfigSpace) SetBAR(i int, b BAR) error {
	minSize, regs := uint64(16), 1
	switch b.Kind {
	case BARIO:
		minSize = 4
	case BARMem64:
		regs = 2
	}
	if i < 0 || i+regs > 6 {
		return fmt.Errorf("pci: BAR %d: no such register", i)
	}
	if b.Size < minSize || b.Size&(b.Size-1) != 0 || b.Kind != BARMem64 && b.Size > 1<<31 {
		return fmt.Errorf("pci: BAR %d: size %#x is not a power of two in range", i, b.Size)
	}
	if b.Addr%b.Size != 0 || b.Kind != BARMem64 && b.Addr+b.Size > 1<<32 {
		return fmt.Errorf("pci: BAR %d: address %#x does not fit size %#x", i, b.Addr, b.Size)
	}
	var flags uint64
	switch b.Kind {
	case BARIO:
		flags = 1
	case BARMem64:
		flags = 4
	}
	if b.Prefetchable && b.Kind != BARIO {
		flags |= 8
	}
	mask := ^(b.Size - 1)
	if b.Kind == BARIO {
		mask &= 0xffff // 16-bit port space
	}
	var v, m [8]byte
	binary.LittleEndian.PutUint64(v[:], b.Addr|flags)
	binary.LittleEndian.PutUint64(m[:], mask)
	off := RegBAR0 + 4*i
	c.Store(off, v[:4*regs])
	c.SetWritable(off, m[:4*regs])
	return nil
}

// BARAddr returns the address the driver (or SetBAR) put in BAR i,
// without the flag bits; for a 64-bit BAR it includes the upper register.
func (c *ConfigSpace) BARAddr(i int) uint64 {
	lo := c.Load32(RegBAR0 + 4*i)
	if lo&1 != 0 {
		return uint64(lo &^ 3)
	}
	a := uint64(lo &^ 0xf)
	if lo&6 == 4 && i < 5 {
		a |= uint64(c.Load32(RegBAR0+4*(i+1))) << 32
	}
	return a
}
