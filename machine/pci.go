package machine

import (
	"fmt"

	"vmm/devices"
	"vmm/devices/pci"
	"vmm/devices/virtio"
)

// PCI placement: the ECAM window (bus 0) and the 32-bit BAR window in
// the MMIO hole, below the virtio-mmio windows and the IOAPIC.
const (
	ecamBase      = 0xE000_0000
	pciMMIO32Base = 0xC000_0000
	pciMMIO32Size = 0x2000_0000
	// INTx: slot s, pin A, swizzled onto GSIs 16–23 (the IOAPIC's PCI
	// pins), as QEMU's pc machine does; the same routes go into _PRT.
	pciINTxBase = 16
)

// pciSlot is one virtio-pci function as placed.
type pciSlot struct {
	slot int
	gsi  uint32
}

// addVirtioPCI puts a PCI host bridge on the buses (mechanism #1 and
// ECAM) and each virtio device behind a virtio-pci transport with MSI-X
// (vectors routed through one GSI routing table) and INTx fallback.
func (m *Machine) addVirtioPCI() ([]pciSlot, error) {
	if m.cfg.NoPCI {
		if len(m.cfg.VirtioPCI) > 0 {
			return nil, fmt.Errorf("%d virtio-pci devices on a machine without PCI", len(m.cfg.VirtioPCI))
		}
		return nil, nil
	}
	root := pci.NewRoot()
	if err := m.pio.Add(pci.ConfigIOPort, pci.ConfigIOSize, "pci-cf8", root.ConfigIO()); err != nil {
		return nil, err
	}
	if err := m.mmio.Add(ecamBase, pci.ECAMBusSize, "pci-ecam", root.ECAM()); err != nil {
		return nil, err
	}
	router := pci.NewGSIRouter(m.vm, pci.DefaultIRQChipRoutes(), pci.IOAPICPins)
	var slots []pciSlot
	for i, dev := range m.cfg.VirtioPCI {
		slot := i + 1
		bar := uint64(pciMMIO32Base) + uint64(i)*virtio.PCIBARSize
		if bar+virtio.PCIBARSize > pciMMIO32Base+pciMMIO32Size {
			return nil, fmt.Errorf("virtio-pci device %d: no room in the PCI window", i)
		}
		gsi := uint32(pciINTxBase + slot%8)
		t, err := virtio.NewPCI(dev, m.mem, m.vm, router, virtio.PCIOptions{BARAddr: bar,
			INTx: func(level bool) { m.vm.IRQLine(gsi, level) }})
		if err != nil {
			return nil, fmt.Errorf("virtio-pci device %d: %w", i, err)
		}
		m.closers = append(m.closers, t)
		// Firmware's job on a PC: tell the guest which IOAPIC input its
		// INTA# reaches (the same GSI the ACPI _PRT names).
		t.WriteConfig(pci.RegInterruptLine, []byte{byte(gsi)})
		if err := root.Add(slot, t); err != nil {
			return nil, err
		}
		if err := m.mmio.Add(bar, t.Size(), fmt.Sprintf("virtio-pci.%d", i), t); err != nil {
			return nil, err
		}
		slots = append(slots, pciSlot{slot: slot, gsi: gsi})
	}
	if m.cfg.PVPanicPCI {
		bar := uint64(pciMMIO32Base) + uint64(len(m.cfg.VirtioPCI))*virtio.PCIBARSize
		if err := m.addPVPanicPCI(root, len(m.cfg.VirtioPCI)+1, bar); err != nil {
			return nil, err
		}
	}
	return slots, nil
}

// pvpanic-pci's identity (QEMU's hw/misc/pvpanic-pci.c: Red Hat's QEMU
// vendor id, class "system peripheral, other") and its BAR: the register
// is one byte, a memory BAR is at least 16.
const (
	pvpanicPCIVendor = 0x1b36
	pvpanicPCIDevice = 0x0011
	pvpanicPCIClass  = 0x088000
	pvpanicPCIBAR    = 16
)

// addPVPanicPCI puts the pvpanic-pci function in slot with its register
// at bar: Linux's pvpanic-pci driver reads the supported events there and
// writes PANICKED from its panic notifier.
func (m *Machine) addPVPanicPCI(root *pci.Root, slot int, bar uint64) error {
	if bar+pvpanicPCIBAR > pciMMIO32Base+pciMMIO32Size {
		return fmt.Errorf("pvpanic-pci: no room in the PCI window")
	}
	cs := pci.NewConfigSpace(pci.Header{VendorID: pvpanicPCIVendor, DeviceID: pvpanicPCIDevice,
		Class: pvpanicPCIClass, SubsysVendorID: 0x1af4, SubsysID: 0x1100})
	if err := cs.SetBAR(0, pci.BAR{Kind: pci.BARMem32, Size: pvpanicPCIBAR, Addr: bar}); err != nil {
		return fmt.Errorf("pvpanic-pci: %w", err)
	}
	if err := root.Add(slot, cs); err != nil {
		return fmt.Errorf("pvpanic-pci: %w", err)
	}
	m.pvpanicPCI = cs
	return m.mmio.Add(bar, pvpanicPCIBAR, "pvpanic-pci", devices.NewPVPanic(m.panicked))
}
