package devices

// PVPanic is QEMU's ISA pvpanic device (one I/O port, 0x505 on a PC):
// a read returns the events the device supports, a guest write reports
// one. Linux's pvpanic driver (ACPI id QEMU0001) writes PanicPanicked
// from its panic notifier, and PanicCrashLoaded when a kdump kernel
// takes over instead.
type PVPanic struct {
	onEvent func(events byte)
}

// pvpanic event bits (QEMU's include/hw/misc/pvpanic.h).
const (
	PanicPanicked    = 1 << 0
	PanicCrashLoaded = 1 << 1
	panicSupported   = PanicPanicked | PanicCrashLoaded
)

// PVPanicPort is where a PC has the device.
const PVPanicPort = 0x505

// NewPVPanic calls onEvent with each supported event bit set the guest
// writes (unknown bits are ignored, as QEMU does).
func NewPVPanic(onEvent func(events byte)) *PVPanic { return &PVPanic{onEvent: onEvent} }

// Read returns the supported events.
func (p *PVPanic) Read(_ uint64, data []byte) {
	for i := range data {
		data[i] = 0
	}
	if len(data) > 0 {
		data[0] = panicSupported
	}
}

// Write reports the events in the byte written.
func (p *PVPanic) Write(_ uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	if ev := data[0] & panicSupported; ev != 0 {
		p.onEvent(ev)
	}
}
