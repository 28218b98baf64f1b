package machine

import (
	"log/slog"

	"vmm/boot"
	"vmm/boot/acpi"
	"vmm/devices"
)

// addACPI builds the ACPI tables (MADT with every vCPU, the virtio-mmio
// devices, the PCI host bridge and MCFG, a sleep register through which
// the guest's poweroff ends the VM, and a reset register through which
// its reset does, and a Generic Event Device with the power button) and
// places the power-off, reset and GED ports. It returns the RSDP address.
func (m *Machine) addACPI(slots []pciSlot) (uint64, error) {
	var mem acpi.Memory = m.mem
	if m.cfg.Restore != nil {
		mem = nil // the tables are in the snapshot's RAM: only compute them
	}
	cfg := acpi.Config{
		Memory:       mem,
		Base:         boot.ACPIAddr, // the loader keeps PVH segments out of it
		Size:         boot.ACPISize,
		CPUs:         m.cfg.CPUs,
		IOAPICID:     uint8(m.cfg.CPUs), // the MP table's IOAPIC id too
		SleepControl: acpi.SleepRegister(acpi.DefaultSleepPort),
		SleepStatus:  acpi.SleepRegister(acpi.DefaultSleepPort),
		// A reset ends the VM, as QEMU's -no-reboot (the i8042's 0xfe
		// and a triple fault do the same).
		ResetRegister: acpi.PortRegister(acpi.DefaultResetPort),
		ResetValue:    acpi.DefaultResetValue,
		// No 8042 (Linux would probe the reset-only i8042 for seconds),
		// no VGA; a CMOS RTC (devices.RTC, described in the DSDT).
		BootFlags:   acpi.BootNoVGA,
		PVPanicPort: devices.PVPanicPort,
		GED:         &acpi.GED{Port: devices.GEDPort, GSI: gedGSI, PowerButton: devices.GEDPowerButton},
	}
	for i := range m.cfg.VirtioMMIO {
		cfg.VirtioMMIO = append(cfg.VirtioMMIO, acpi.MMIODevice{
			Base: uint32(virtioMMIOBase + uint64(i)*0x1000), Size: 0x1000, GSI: virtioGSIs[i]})
	}
	if len(slots) > 0 {
		p := &acpi.PCI{ECAMBase: ecamBase, MMIO32: acpi.Window{Base: pciMMIO32Base, Size: pciMMIO32Size}}
		for _, s := range slots {
			p.Routes = append(p.Routes, acpi.INTxRoute{Slot: s.slot, Pin: 1, GSI: s.gsi})
		}
		cfg.PCI = p
	}
	tables, err := acpi.Build(cfg)
	if err != nil {
		return 0, err
	}
	sleep := &acpi.SleepControl{S5Type: acpi.SleepTypeS5,
		PowerOff: func() { m.stop(Exit{Status: 0, Reason: "guest power off (ACPI S5)"}) }}
	if err := m.pio.Add(acpi.DefaultSleepPort, 1, "acpi-sleep", sleep); err != nil {
		return 0, err
	}
	reset := &acpi.ResetControl{Value: acpi.DefaultResetValue,
		Reset: func() { m.stop(Exit{Status: 0, Reason: "guest reset (ACPI reset register)"}) }}
	if err := m.pio.Add(acpi.DefaultResetPort, 1, "acpi-reset", reset); err != nil {
		return 0, err
	}
	ged := devices.NewGED(func() {
		// An edge: raised and lowered at once (as an irqfd does).
		if err := m.vm.IRQLine(gedGSI, true); err != nil {
			slog.Warn("GED interrupt", "err", err)
			return
		}
		m.vm.IRQLine(gedGSI, false)
	})
	if err := m.pio.Add(devices.GEDPort, 1, "ged", ged); err != nil {
		return 0, err
	}
	return tables.RSDP, nil
}

// gedGSI is the Generic Event Device's interrupt: an ISA GSI nothing
// else uses (COM1 has 4, virtio-mmio 5-7, 9-12, 14 and 15, PCI INTx
// 16-23).
const gedGSI = 13

// PowerButton presses the ACPI power button (QMP's system_powerdown):
// the power-button event becomes pending in the Generic Event Device's
// register and its interrupt fires; a guest with an ACPI button driver
// then decides what to do (Linux reports KEY_POWER). It reports false
// when the VM has no ACPI tables and so no button to press.
func (m *Machine) PowerButton() bool {
	dev, _, ok := m.pio.find(devices.GEDPort, 1)
	g, isGED := dev.(*devices.GED)
	if !ok || !isGED {
		return false
	}
	g.PowerButton()
	return true
}
