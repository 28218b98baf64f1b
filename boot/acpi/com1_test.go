package acpi

import (
	"bytes"
	"testing"
)

// TestDSDTCOM1: the DSDT describes COM1 (PNP0501, ports 0x3f8-0x3ff,
// GSI 4 edge-triggered). A hardware-reduced ACPI platform has no legacy
// PIC, so Linux maps no ISA IRQs: without this device its 8250 driver
// cannot get IRQ 4 and every userspace write to ttyS0 fails.
func TestDSDTCOM1(t *testing.T) {
	tabs, err := Build(testConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := tabs.Get("DSDT")
	want := Device("COM1",
		Name("_HID", eisa("PNP0501")),
		Name("_UID", Integer(0)),
		Name("_CRS", ResourceTemplate(IO(0x3f8, 0x3f8, 1, 8), Interrupt(Edge, ActiveHigh, false, 4))))
	if !bytes.Contains(d.Data, want) {
		t.Errorf("DSDT lacks the COM1 device (PNP0501, IO 0x3f8/8, GSI 4 edge)")
	}
	if Sum(d.Data) != 0 {
		t.Errorf("DSDT checksum: sum %#x; want 0", Sum(d.Data))
	}
}
