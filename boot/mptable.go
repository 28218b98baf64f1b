package boot

import (
	"encoding/binary"
	"fmt"
)

// Intel MultiProcessor Specification 1.4: a floating pointer structure that
// the guest finds by scanning the EBDA (or the BIOS area), pointing at a
// configuration table that lists the CPUs, the ISA bus, the IOAPIC and the
// interrupt wiring. Linux uses it for secondary CPUs when there is no ACPI.

const (
	LAPICAddr  = 0xFEE00000
	IOAPICAddr = 0xFEC00000
	MaxCPUs    = 254 // APIC ids 0..253; the IOAPIC takes id ncpus, 0xFF is broadcast

	mpSpecRev      = 4 // MP spec 1.4
	mpFloatSize    = 16
	mpHeaderSize   = 44
	mpProcSize     = 20
	mpEntrySize    = 8 // bus, IOAPIC, I/O and local interrupt entries
	mpISAIRQs      = 16
	mpLAPICVersion = 0x14
	mpIOAPICVer    = 0x11
	ebdaPtrAddr    = 0x40E // BDA: EBDA segment
	baseMemAddr    = 0x413 // BDA: base memory size in KiB
	ebdaSize       = 0x400

	// Entry types.
	mpProcessor = 0
	mpBus       = 1
	mpIOAPIC    = 2
	mpIOIntr    = 3
	mpLocalIntr = 4

	// Interrupt types.
	mpINT    = 0
	mpNMI    = 1
	mpExtINT = 3

	// Processor entry flags.
	cpuEnabled = 1 << 0
	cpuBSP     = 1 << 1

	// CPU signature (family 6) and features (FPU, APIC), as Firecracker
	// reports them; Linux only checks the APIC id and flags.
	cpuSignature = 0x600
	cpuFeatures  = 1<<0 | 1<<9
)

// mpIOIntrs is the I/O interrupt wiring: the 8259's ExtINT on pin 0, ISA
// IRQ 0 (the PIT) on pin 2 and IRQs 1 and 3..15 identity-mapped, as the
// in-kernel irqchip routes them and SeaBIOS describes them. IRQ 2 is the
// PIC cascade and is omitted so pin 2 has a single source.
func mpIOIntrs() (entries [][4]uint8) { // {type, bus irq, pin}
	entries = append(entries, [4]uint8{mpExtINT, 0, 0})
	for irq := range uint8(mpISAIRQs) {
		switch irq {
		case 0:
			entries = append(entries, [4]uint8{mpINT, 0, 2})
		case 2:
		default:
			entries = append(entries, [4]uint8{mpINT, irq, irq})
		}
	}
	return entries
}

// MPTableSize is the size of the MP structures for ncpus CPUs.
func MPTableSize(ncpus int) uint64 {
	n := uint64(max(ncpus, 0))
	return mpFloatSize + mpHeaderSize + n*mpProcSize + mpEntrySize*(1+1+uint64(len(mpIOIntrs()))+2)
}

// MPTableAddr is where WriteMPTable(mem, EBDAAddr, ncpus) puts the table:
// the EBDA when it fits in its 1 KiB (up to 40 CPUs), else the BIOS area.
func MPTableAddr(ncpus int) uint64 {
	if MPTableSize(ncpus) <= ebdaSize {
		return EBDAAddr
	}
	return BIOSAddr
}

// WriteMPTable writes the MP floating pointer at addr and the configuration
// table right after it. With addr = EBDAAddr the table moves to BIOSAddr
// (where guests also look) if it does not fit in the 1 KiB EBDA. It also
// points the BDA's EBDA segment at EBDAAddr, as a BIOS would.
func WriteMPTable(mem Memory, addr uint64, ncpus int) error {
	if ncpus < 1 || ncpus > MaxCPUs {
		return fmt.Errorf("boot: MP table for %d CPUs: want 1 to %d", ncpus, MaxCPUs)
	}
	size := MPTableSize(ncpus)
	if addr == EBDAAddr {
		addr = MPTableAddr(ncpus)
	} else if addr >= EBDAAddr && addr < EBDAAddr+ebdaSize && addr+size > EBDAAddr+ebdaSize {
		return fmt.Errorf("boot: MP table (%d bytes for %d CPUs) at %#x does not fit in the 1 KiB EBDA", size, ncpus, addr)
	}
	if addr+size > 1<<32 {
		return fmt.Errorf("boot: MP table at %#x is above 4 GiB", addr)
	}
	b := mpTable(uint32(addr), ncpus)
	if err := write(mem, addr, b, "MP table"); err != nil {
		return err
	}
	bda := make([]byte, 2)
	binary.LittleEndian.PutUint16(bda, EBDAAddr>>4)
	if err := write(mem, ebdaPtrAddr, bda, "BDA EBDA pointer"); err != nil {
		return err
	}
	binary.LittleEndian.PutUint16(bda, EBDAAddr>>10)
	return write(mem, baseMemAddr, bda, "BDA base memory size")
}

// mpTable builds the floating pointer (at addr) and the configuration
// table (at addr+16).
func mpTable(addr uint32, ncpus int) []byte {
	le := binary.LittleEndian
	cfg := make([]byte, mpHeaderSize, MPTableSize(ncpus)-mpFloatSize)
	entry := func(e ...byte) { cfg = append(cfg, e...) }
	var u32 [4]byte
	le32b := func(v uint32) []byte { le.PutUint32(u32[:], v); return u32[:] }

	for i := range ncpus {
		flags := uint8(cpuEnabled)
		if i == 0 {
			flags |= cpuBSP
		}
		entry(mpProcessor, uint8(i), mpLAPICVersion, flags)
		entry(le32b(cpuSignature)...)
		entry(le32b(cpuFeatures)...)
		entry(make([]byte, 8)...)
	}
	const isaBus = 0
	entry(mpBus, isaBus, 'I', 'S', 'A', ' ', ' ', ' ')
	ioapicID := uint8(ncpus)
	entry(mpIOAPIC, ioapicID, mpIOAPICVer, 1)
	entry(le32b(IOAPICAddr)...)
	for _, e := range mpIOIntrs() {
		// Flags 0: polarity and trigger conform to the (ISA) bus.
		entry(mpIOIntr, e[0], 0, 0, isaBus, e[1], ioapicID, e[2])
	}
	entry(mpLocalIntr, mpExtINT, 0, 0, isaBus, 0, 0xFF, 0) // LINT0 on every LAPIC
	entry(mpLocalIntr, mpNMI, 0, 0, isaBus, 0, 0xFF, 1)    // LINT1

	copy(cfg, "PCMP")
	le.PutUint16(cfg[4:], uint16(len(cfg)))
	cfg[6] = mpSpecRev
	copy(cfg[8:16], "VMM     ")
	copy(cfg[16:28], "vmm         ")
	le.PutUint16(cfg[34:], uint16(ncpus+1+1+len(mpIOIntrs())+2))
	le.PutUint32(cfg[36:], LAPICAddr)
	// Extended table length and checksum (40, 42) stay 0: no extended entries.
	cfg[7] = -checksum(cfg)

	fp := make([]byte, mpFloatSize)
	copy(fp, "_MP_")
	le.PutUint32(fp[4:], addr+mpFloatSize)
	fp[8] = mpFloatSize / 16
	fp[9] = mpSpecRev
	// Feature bytes 0: a configuration table is present; no IMCR (virtual wire).
	fp[10] = -checksum(fp)
	return append(fp, cfg...)
}

// checksum is the byte sum the MP structures must make zero.
func checksum(b []byte) uint8 {
	var s uint8
	for _, c := range b {
		s += c
	}
	return s
}
