package acpi

import "fmt"

// Memory is guest physical memory; boot.Memory and the machine's
// memory satisfy it.
type Memory interface {
	Slice(addr, n uint64) ([]byte, error)
}

// Default placement: the first 64 KiB of the BIOS-area search range
// (0xE0000-0xFFFFF), below the MP table's fallback at 0xF0000.
const (
	DefaultBase = 0xe0000
	DefaultSize = 0x10000
)

// Config describes the machine the tables announce.
type Config struct {
	// Memory receives the tables; nil only computes them.
	Memory Memory
	// Base and Size bound where the tables go (16-byte aligned base; the
	// RSDP is first). Zero means DefaultBase/DefaultSize.
	Base, Size uint64

	CPUs       int    // local APIC ids 0..CPUs-1
	LAPICAddr  uint32 // zero: 0xFEE00000
	IOAPICAddr uint32 // zero: 0xFEC00000
	IOAPICID   uint8  // the MP table uses CPUs

	VirtioMMIO []MMIODevice
	PCI        *PCI // nil: no host bridge, no MCFG

	// PVPanicPort, if not zero, is the ISA pvpanic device's I/O port
	// (QEMU0001, which Linux's pvpanic driver binds).
	PVPanicPort uint16

	// GED, if not nil, is the Generic Event Device (ACPI0013) and the
	// power button (PNP0C0C) it notifies.
	GED *GED

	// SleepControl and SleepStatus are the FADT's sleep registers
	// (SleepRegister gives an 8-bit I/O port); S5Type is the SLP_TYP
	// \_S5 names (zero: 5).
	SleepControl, SleepStatus GAS
	S5Type                    byte

	// ResetRegister is the FADT's reset register (PortRegister gives an
	// I/O port), written with ResetValue to reset; a zero Address
	// leaves it out (RESET_REG_SUP clear).
	ResetRegister GAS
	ResetValue    byte

	BootFlags uint16 // FADT IAPC_BOOT_ARCH, e.g. Boot8042
}

// MMIODevice is one virtio-mmio device (_HID LNRO0005).
type MMIODevice struct {
	Base, Size uint32
	GSI        uint32 // edge-triggered, active high
}

// PCI describes the host bridge PCI0.
type PCI struct {
	ECAMBase uint64 // MMCONFIG for buses 0..LastBus, 1 MiB each
	LastBus  byte
	// MMIO32 is the window below 4 GiB for BARs; MMIO64 an optional one
	// above (Size 0: none).
	MMIO32, MMIO64 Window
	// Routes are the _PRT entries: INTx pin of a slot to a GSI (level,
	// active low by ACPI's default for _PRT GSIs).
	Routes []INTxRoute
}

// Window is a range of guest physical addresses.
type Window struct{ Base, Size uint64 }

// INTxRoute is one _PRT entry.
type INTxRoute struct {
	Slot int    // device number 0-31
	Pin  int    // 1 INTA# … 4 INTD#
	GSI  uint32 // IOAPIC input
}

// SleepRegister is an 8-bit sleep control or status register at port.
func SleepRegister(port uint16) GAS { return PortRegister(port) }

// defaults fills in the zero fields and checks the rest.
func (c Config) defaults() (Config, error) {
	if c.Base == 0 && c.Size == 0 {
		c.Base, c.Size = DefaultBase, DefaultSize
	}
	if c.LAPICAddr == 0 {
		c.LAPICAddr = 0xfee00000
	}
	if c.IOAPICAddr == 0 {
		c.IOAPICAddr = 0xfec00000
	}
	if c.S5Type == 0 {
		c.S5Type = SleepTypeS5
	}
	switch {
	case c.Base%16 != 0:
		return c, fmt.Errorf("acpi: table base %#x is not 16-byte aligned", c.Base)
	case c.CPUs < 1 || c.CPUs > 255:
		return c, fmt.Errorf("acpi: %d CPUs: want 1-255", c.CPUs)
	case c.SleepControl.Address == 0 || c.SleepStatus.Address == 0:
		return c, fmt.Errorf("acpi: a hardware-reduced FADT needs sleep control and status registers")
	case c.S5Type > 7:
		return c, fmt.Errorf("acpi: SLP_TYP %d does not fit 3 bits", c.S5Type)
	}
	if p := c.PCI; p != nil {
		if p.MMIO32.Size == 0 || p.MMIO32.Base+p.MMIO32.Size > 1<<32 {
			return c, fmt.Errorf("acpi: PCI 32-bit window %#x+%#x is not below 4 GiB", p.MMIO32.Base, p.MMIO32.Size)
		}
		for _, r := range p.Routes {
			if r.Slot < 0 || r.Slot > 31 || r.Pin < 1 || r.Pin > 4 {
				return c, fmt.Errorf("acpi: _PRT entry slot %d pin %d is out of range", r.Slot, r.Pin)
			}
		}
	}
	return c, nil
}
