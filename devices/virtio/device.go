// Package virtio is the transport-independent virtio core: split
// virtqueues over guest memory, the device interface every virtio device
// implements, and the transports (virtio-mmio) that carry it. A device
// never knows its transport; a transport never knows the device type.
package virtio

// Memory is guest physical memory. Slice must bounds-check: the range
// comes from the guest.
type Memory interface {
	Slice(addr, n uint64) ([]byte, error)
}

// Feature bits shared by all devices (virtio 1.2 §6).
const (
	FeatureRingIndirectDesc = 1 << 28
	FeatureRingEventIdx     = 1 << 29
	FeatureVersion1         = 1 << 32
)

// Interrupt is how a device tells the driver about used buffers; the
// transport turns it into an ISR bit and an irqfd write (mmio) or an
// MSI-X vector (pci, later).
type Interrupt interface {
	// Signal reports used buffers on queue q. It never blocks.
	Signal(q int)
	// ConfigChanged reports a change of the device config space.
	ConfigChanged()
}

// Notifier is where queue notifications (guest kicks) arrive: one
// eventfd per queue, registered with KVM as an ioeventfd by the
// transport. The device owns reading it (usually from the event loop).
type Notifier struct {
	FD int // eventfd, non-blocking
}

// ActivateContext is what a device gets when the driver sets DRIVER_OK.
type ActivateContext struct {
	Mem      Memory
	Features uint64 // negotiated (driver-acknowledged) features
	// Queues holds one ring per queue (nil where the driver did not
	// enable it), owned by the device until its Reset returns.
	Queues    []*Queue
	Notifiers []Notifier
	Interrupt Interrupt
}

// Device is one virtio device behind a transport.
type Device interface {
	// Type is the virtio device id (3 = console).
	Type() uint32
	// Features are the device's feature bits; the transport adds
	// VERSION_1 and the ring features it supports.
	Features() uint64
	// QueueSizes gives the maximum size of each queue; its length is the
	// number of queues.
	QueueSizes() []uint16
	// ReadConfig and WriteConfig access the device-specific config space
	// at offset (already relative to its start). Out-of-range accesses
	// read zero and are ignored on write; they must never panic.
	ReadConfig(offset uint64, data []byte)
	WriteConfig(offset uint64, data []byte)
	// Activate starts the device; it is called from a vCPU thread when
	// the driver sets DRIVER_OK. An error marks the device as failed
	// (DEVICE_NEEDS_RESET) and is logged.
	Activate(ctx ActivateContext) error
	// Reset stops the device and forgets all queue state; it is called
	// when the driver writes 0 to the status register. After Reset
	// returns the device no longer touches guest memory.
	Reset()
}
