package acpi

import "fmt"

// GED describes a Generic Event Device (ACPI 6.5 §5.6.9), the way a
// hardware-reduced platform signals events: an interrupt whose _EVT
// method reads an event register and notifies the device concerned.
// vmm's has one event, the power button (QEMU's system_powerdown).
type GED struct {
	// Port is the 8-bit event register's I/O port: a read returns the
	// pending events and clears them.
	Port uint16
	// GSI is the interrupt (edge-triggered, active high) raised when an
	// event becomes pending.
	GSI uint32
	// PowerButton is the register bit of a power-button press.
	PowerButton byte
}

// ged is \_SB.GED and the power button \_SB.PWRB (PNP0C0C) it notifies:
//
//	Device (GED) {
//	    Name (_HID, "ACPI0013")
//	    Name (_UID, Zero)
//	    Name (_CRS, ResourceTemplate () {
//	        Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { GSI } })
//	    OperationRegion (EREG, SystemIO, Port, One)
//	    Field (EREG, ByteAcc, NoLock, WriteAsZeros) { ESEL, 8 }
//	    Method (_EVT, 1, Serialized) {
//	        If (Arg0 == GSI) {
//	            Local0 = ESEL
//	            If ((Local0 & PowerButton) == PowerButton) {
//	                Notify (\_SB.PWRB, 0x80)
//	            }
//	        }
//	    }
//	}
//	Device (PWRB) { Name (_HID, EisaId ("PNP0C0C")) Name (_UID, Zero) }
//
// Linux's GED driver (drivers/acpi/evged.c) requests the interrupt and
// runs _EVT with the GSI; its ACPI button driver binds PNP0C0C and
// reports Notify 0x80 as KEY_POWER on an input device (and as
// "button/power PWRF" to acpid). The register is read once per event:
// every pending bit is handled by that read.
func ged(g *GED) ([]AML, error) {
	if g.Port == 0 || g.PowerButton == 0 {
		return nil, fmt.Errorf("acpi: GED: port %#x, power button bit %#x: want both set", g.Port, g.PowerButton)
	}
	bit := Integer(uint64(g.PowerButton))
	return []AML{
		Device("GED",
			Name("_HID", String("ACPI0013")),
			Name("_UID", Integer(0)),
			Name("_CRS", ResourceTemplate(Interrupt(Edge, ActiveHigh, false, g.GSI))),
			OperationRegion("EREG", SystemIO, uint64(g.Port), 1),
			Field("EREG", ByteAcc|NoLock|WriteAsZeros, FieldUnit{Name: "ESEL", Bits: 8}),
			Method("_EVT", 1, true,
				If(LEqual(Arg(0), Integer(uint64(g.GSI))),
					Store(Ref("ESEL"), Local(0)),
					If(LEqual(And(Local(0), bit, nil), bit),
						Notify(Ref(`\_SB.PWRB`), Integer(0x80)),
					),
				),
			),
		),
		Device("PWRB",
			Name("_HID", eisa("PNP0C0C")),
			Name("_UID", Integer(0)),
		),
	}, nil
}
