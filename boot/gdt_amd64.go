package boot

import (
	"encoding/binary"

	"vmm/kvm"
)

// Boot selectors, as Linux's boot code names them (__BOOT_CS, __BOOT_DS);
// the TSS follows. The same layout serves both entry modes.
const (
	BootCS  = 0x10
	BootDS  = 0x18
	BootTSS = 0x20

	gdtEntries = 6 // null, null, CS, DS, TSS (16 bytes in long mode)
	tssLimit   = 0x67
)

// Segment types (the 4-bit type field).
const (
	segCodeXRA  = 0xb // code, execute/read, accessed
	segDataRWA  = 0x3 // data, read/write, accessed
	segTSSBusy  = 0xb // system: busy 32/64-bit TSS
	flatLimit   = 0xFFFFFFFF
	flatLimit20 = 0xFFFFF
)

// codeSegment returns the flat code segment: 64-bit (L=1, D=0) for long
// mode, 32-bit (D=1) for the PVH protected-mode entry.
func codeSegment(long bool) kvm.Segment {
	s := kvm.Segment{Limit: flatLimit, Selector: BootCS, Type: segCodeXRA, Present: 1, S: 1, G: 1}
	if long {
		s.L = 1
	} else {
		s.DB = 1
	}
	return s
}

// dataSegment returns the flat 32-bit data segment used for DS/ES/FS/GS/SS.
func dataSegment() kvm.Segment {
	return kvm.Segment{Limit: flatLimit, Selector: BootDS, Type: segDataRWA, Present: 1, S: 1, DB: 1, G: 1}
}

// tssSegment returns the busy TSS that TR must hold for VM entry (and that
// the PVH ABI asks for).
func tssSegment() kvm.Segment {
	return kvm.Segment{Base: TSSAddr, Limit: tssLimit, Selector: BootTSS, Type: segTSSBusy, Present: 1}
}

// descriptor encodes s as an 8-byte segment descriptor.
func descriptor(s kvm.Segment) uint64 {
	limit := uint64(s.Limit)
	if s.G != 0 {
		limit >>= 12
	}
	access := uint64(s.Type) | uint64(s.S)<<4 | uint64(s.DPL)<<5 | uint64(s.Present)<<7
	flags := uint64(s.AVL) | uint64(s.L)<<1 | uint64(s.DB)<<2 | uint64(s.G)<<3
	return limit&0xFFFF | (s.Base&0xFFFFFF)<<16 | access<<40 |
		(limit>>16&0xF)<<48 | flags<<52 | (s.Base>>24&0xFF)<<56
}

// writeGDT writes the boot GDT and a zeroed TSS, so that the descriptors
// match the hidden segment state Apply loads: a guest that reloads its
// segment registers from this GDT gets the same segments.
func writeGDT(mem Memory, long bool) error {
	b := make([]byte, gdtEntries*8)
	binary.LittleEndian.PutUint64(b[BootCS:], descriptor(codeSegment(long)))
	binary.LittleEndian.PutUint64(b[BootDS:], descriptor(dataSegment()))
	// In long mode a TSS descriptor is 16 bytes; the upper half holds
	// base[63:32], which is 0 here, so the same bytes suit 32-bit mode.
	binary.LittleEndian.PutUint64(b[BootTSS:], descriptor(tssSegment()))
	if err := write(mem, GDTAddr, b, "GDT"); err != nil {
		return err
	}
	return zero(mem, TSSAddr, tssLimit+1, "TSS")
}
