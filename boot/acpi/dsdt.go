package acpi

import "fmt"

// dsdtAML is the DSDT's definition block: the devices under \_SB and
// the \_S5 sleep package.
func dsdtAML(c Config) (AML, error) {
	devs := []AML{com1()}
	if c.BootFlags&BootNoCMOSRTC == 0 {
		devs = append(devs, rtc())
	}
	if c.PVPanicPort != 0 {
		devs = append(devs, pvpanic(c.PVPanicPort))
	}
	if c.GED != nil {
		g, err := ged(c.GED)
		if err != nil {
			return nil, err
		}
		devs = append(devs, g...)
	}
	for i, d := range c.VirtioMMIO {
		if i > 0xff {
			return nil, fmt.Errorf("acpi: more than 256 virtio-mmio devices")
		}
		devs = append(devs, Device(fmt.Sprintf("VR%02X", i),
			Name("_HID", String("LNRO0005")),
			Name("_UID", Integer(uint64(i))),
			Name("_CRS", ResourceTemplate(
				Memory32Fixed(true, d.Base, d.Size),
				Interrupt(Edge, ActiveHigh, false, d.GSI),
			)),
		))
	}
	if c.PCI != nil {
		devs = append(devs, pci0(c.PCI)...)
	}
	s5 := uint64(c.S5Type)
	return append(AML(Scope("_SB", devs...)),
		Name("_S5", Package(Integer(s5), Integer(s5), Integer(0), Integer(0)))...), nil
}

// rtc is the CMOS RTC at ports 0x70-0x71 (PNP0B00), without an
// interrupt: vmm's RTC raises none. Linux's rtc-cmos binds to it through
// PNP; given no IRQ on a platform without a legacy PIC (hardware-reduced
// ACPI), it runs without alarms, and hwclock polls the clock instead of
// waiting for an update interrupt that would never come. (Without the
// device, Linux registers a platform RTC with IRQ 8 hardwired.)
func rtc() AML {
	return Device("RTC",
		Name("_HID", eisa("PNP0B00")),
		Name("_CRS", ResourceTemplate(IO(0x70, 0x70, 1, 2))),
	)
}

// pvpanic is QEMU's ISA pvpanic device (QEMU0001, one I/O port), as
// QEMU's own DSDT names it (PEVT): Linux's pvpanic driver binds it
// through ACPI and reports a panic there.
func pvpanic(port uint16) AML {
	return Device("PEVT",
		Name("_HID", String("QEMU0001")),
		Name("_CRS", ResourceTemplate(IO(port, port, 1, 1))),
	)
}

// com1 is the 16550A at 0x3f8 on GSI 4 (PNP0501, edge, active high).
// On a hardware-reduced ACPI platform Linux has no legacy PIC and so no
// ISA IRQs 0-15 ("preallocated irqs: 0"): the 8250 driver's built-in
// COM1 (IRQ 4 hardwired) fails request_irq at every open, the tty gets
// TTY_IO_ERROR and every userspace write to ttyS0 fails with EIO, while
// printk's polled console path still works. Described here, 8250_pnp
// takes the port over with GSI 4 mapped through the IOAPIC, as Cloud
// Hypervisor's and Firecracker's DSDTs do.
func com1() AML {
	return Device("COM1",
		Name("_HID", eisa("PNP0501")),
		Name("_UID", Integer(0)),
		Name("_CRS", ResourceTemplate(IO(0x3f8, 0x3f8, 1, 8), Interrupt(Edge, ActiveHigh, false, 4))),
	)
}

// eisa is EISAID for the fixed ids this package uses.
func eisa(id string) AML {
	b, err := EISAID(id)
	if err != nil {
		panic(err)
	}
	return b
}

// pci0 is the PCIe host bridge and the motherboard resource device
// that reserves its ECAM window (Linux ignores MCFG areas that neither
// e820 nor a PNP0C02 _CRS reserves).
func pci0(p *PCI) []AML {
	crs := [][]byte{
		WordBusNumber(0, uint16(p.LastBus)),
		IO(0xcf8, 0xcf8, 1, 8),
		WordIO(0x0000, 0x0cf7),
		WordIO(0x0d00, 0xffff),
		DWordMemory(uint32(p.MMIO32.Base), uint32(p.MMIO32.Base+p.MMIO32.Size-1)),
	}
	if p.MMIO64.Size != 0 {
		crs = append(crs, QWordMemory(p.MMIO64.Base, p.MMIO64.Base+p.MMIO64.Size-1))
	}
	var prt []AML
	for _, r := range p.Routes {
		prt = append(prt, Package(Integer(uint64(r.Slot)<<16|0xffff), Integer(uint64(r.Pin-1)), Integer(0), Integer(uint64(r.GSI))))
	}
	host := []AML{
		Name("_HID", eisa("PNP0A08")),
		Name("_CID", eisa("PNP0A03")),
		Name("_SEG", Integer(0)),
		Name("_BBN", Integer(0)),
		Name("_UID", Integer(0)),
		Name("_CRS", ResourceTemplate(crs...)),
	}
	if len(prt) > 0 {
		host = append(host, Name("_PRT", Package(prt...)))
	}
	ecamSize := (uint64(p.LastBus) + 1) << 20
	return []AML{
		Device("PCI0", host...),
		Device("MRES",
			Name("_HID", eisa("PNP0C02")),
			Name("_UID", Integer(0)),
			Name("_CRS", ResourceTemplate(Memory32Fixed(false, uint32(p.ECAMBase), uint32(ecamSize)))),
		),
	}
}

func dsdt(c Config) ([]byte, error) {
	aml, err := dsdtAML(c)
	if err != nil {
		return nil, err
	}
	return table("DSDT", 2, "GOVMMDSD", aml), nil
}
