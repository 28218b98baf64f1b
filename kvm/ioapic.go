package kvm

import (
	"encoding/binary"
	"fmt"
)

// IOAPICPins is the in-kernel IOAPIC's pin count (KVM_IOAPIC_NUM_PINS).
const IOAPICPins = 24

// IOAPICPin is one pin of the in-kernel IOAPIC as KVM_GET_IRQCHIP
// reports it: the redirection entry's fields and the pin's IRR bit.
type IOAPICPin struct {
	Vector        uint8
	Masked        bool
	LevelTrig     bool
	RemoteIRR     bool // a level interrupt delivered and not yet EOId
	IRR           bool // the pin is asserted and not yet delivered
	DeliveryMode  uint8
	DestinationID uint8
}

// Pin decodes pin of an IRQChipIOAPIC state (struct kvm_ioapic_state:
// base_address u64, ioregsel u32, id u32, irr u32, pad u32, then the
// redirection table of u64 entries).
func (c *IRQChip) Pin(pin int) (IOAPICPin, error) {
	if c.ChipID != IRQChipIOAPIC {
		return IOAPICPin{}, fmt.Errorf("irqchip %d is not the IOAPIC", c.ChipID)
	}
	if pin < 0 || pin >= IOAPICPins {
		return IOAPICPin{}, fmt.Errorf("IOAPIC pin %d out of range 0-%d", pin, IOAPICPins-1)
	}
	irr := binary.LittleEndian.Uint32(c.Chip[16:])
	e := binary.LittleEndian.Uint64(c.Chip[24+8*pin:])
	return IOAPICPin{
		Vector:        uint8(e),
		DeliveryMode:  uint8(e>>8) & 7,
		RemoteIRR:     e&(1<<14) != 0,
		LevelTrig:     e&(1<<15) != 0,
		Masked:        e&(1<<16) != 0,
		DestinationID: uint8(e >> 56),
		IRR:           irr&(1<<pin) != 0,
	}, nil
}
