package machine

// Guest physical layout. RAM starts at 0; the 1 GiB below 4 GiB is a
// hole for MMIO (IOAPIC, LAPIC, later virtio and PCI), and RAM that does
// not fit below the hole continues at 4 GiB, as on a PC.
const (
	MMIOHoleStart = 0xC000_0000
	MMIOHoleEnd   = 0x1_0000_0000

	IOAPICAddr = 0xFEC0_0000
	LAPICAddr  = 0xFEE0_0000

	// KVM needs three pages for the real-mode TSS and one for the
	// identity map on Intel; they sit just below the BIOS area, as in QEMU.
	tssAddr         = 0xFFFB_D000
	identityMapAddr = 0xFFFB_C000

	// Device placement below: legacy ports as on a PC.
	COM1Port      = 0x3f8
	COM1IRQ       = 4
	I8042Port     = 0x60
	DebugExitPort = 0xf4
	postPort      = 0x80
)
