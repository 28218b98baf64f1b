package acpi

import (
	"bytes"
	"testing"
)

// TestDSDTPVPanic: with a pvpanic port the DSDT has QEMU's PEVT device
// (_HID "QEMU0001", one I/O port), which Linux's pvpanic driver binds;
// without one it has none.
func TestDSDTPVPanic(t *testing.T) {
	want := Device("PEVT",
		Name("_HID", String("QEMU0001")),
		Name("_CRS", ResourceTemplate(IO(0x505, 0x505, 1, 1))))
	c := testConfig(nil)
	c.PVPanicPort = 0x505
	tabs, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := tabs.Get("DSDT")
	if !bytes.Contains(d.Data, want) {
		t.Errorf("DSDT lacks the pvpanic device (QEMU0001, IO 0x505/1)")
	}
	if Sum(d.Data) != 0 {
		t.Errorf("DSDT checksum: sum %#x; want 0", Sum(d.Data))
	}
	tabs, err = Build(testConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	d, _ = tabs.Get("DSDT")
	if bytes.Contains(d.Data, []byte("QEMU0001")) {
		t.Errorf("DSDT has a pvpanic device though none was configured")
	}
}
