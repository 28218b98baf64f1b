package kvm

import (
	"encoding/binary"
	"testing"
)

// TestIOAPICPin reads pin 4 of a real in-kernel IOAPIC: masked after
// reset, its IRR set by a raised line that a masked pin cannot deliver,
// and an entry written through SetIRQChip decoded field by field.
func TestIOAPICPin(t *testing.T) {
	v := newTestVM(t, []byte{0xf4}, true)
	c, err := v.vm.IRQChip(IRQChipIOAPIC)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Pin(4)
	if err != nil || !p.Masked || p.IRR {
		t.Fatalf("Pin(4) after reset = %+v, %v; want masked, IRR clear", p, err)
	}
	if err := v.vm.IRQLine(4, true); err != nil {
		t.Fatal(err)
	}
	if c, err = v.vm.IRQChip(IRQChipIOAPIC); err != nil {
		t.Fatal(err)
	}
	if p, _ = c.Pin(4); !p.IRR || !p.Masked {
		t.Errorf("Pin(4) with the line high and the pin masked = %+v; want IRR set", p)
	}
	// Vector 0x34, fixed delivery, level-triggered, remote IRR, to APIC 1.
	binary.LittleEndian.PutUint64(c.Chip[24+8*9:], 0x34|1<<14|1<<15|1<<56)
	if err := v.vm.SetIRQChip(c); err != nil {
		t.Fatal(err)
	}
	if c, err = v.vm.IRQChip(IRQChipIOAPIC); err != nil {
		t.Fatal(err)
	}
	want := IOAPICPin{Vector: 0x34, LevelTrig: true, RemoteIRR: true, DestinationID: 1}
	if p, err := c.Pin(9); err != nil || p != want {
		t.Errorf("Pin(9) = %+v, %v; want %+v", p, err, want)
	}
	if _, err := c.Pin(24); err == nil {
		t.Error("Pin(24) = nil error; want out of range")
	}
	pic, _ := v.vm.IRQChip(IRQChipPICMaster)
	if _, err := pic.Pin(4); err == nil {
		t.Error("Pin on the PIC's state = nil error; want not the IOAPIC")
	}
}
