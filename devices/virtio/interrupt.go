package virtio

import (
	"encoding/binary"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// mmioInterrupt raises the transport's one interrupt: an ISR bit and a
// write to the irqfd-bound eventfd. Signal runs on the device's goroutine
// while vCPUs read and acknowledge the ISR, hence the atomics.
type mmioInterrupt struct {
	fd         atomic.Int32 // -1 once closed
	isr        atomic.Uint32
	generation atomic.Uint32 // ConfigGeneration
}

// Signal reports used buffers; the queue number is not needed on mmio.
func (i *mmioInterrupt) Signal(int) { i.raise(isrUsedBuffer) }

// ConfigChanged reports a config space change and bumps its generation.
func (i *mmioInterrupt) ConfigChanged() {
	i.generation.Add(1)
	i.raise(isrConfigChanged)
}

func (i *mmioInterrupt) raise(bit uint32) {
	i.isr.Or(bit)
	if fd := int(i.fd.Load()); fd >= 0 {
		kickEventFD(fd)
	}
}

// ack clears the bits the driver acknowledged.
func (i *mmioInterrupt) ack(bits uint32) { i.isr.And(^bits) }

// reset clears the interrupt status (the driver reset the device).
func (i *mmioInterrupt) reset() { i.isr.Store(0) }

// newEventFD returns a non-blocking, close-on-exec eventfd.
func newEventFD() (int, error) {
	return unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
}

// drainEventFD empties an eventfd, discarding its count.
func drainEventFD(fd int) {
	var b [8]byte
	_, _ = unix.Read(fd, b[:])
}

// kickEventFD adds one to an eventfd. Only EAGAIN (the counter is
// saturated: a wakeup is pending anyway) can fail; it needs no handling.
func kickEventFD(fd int) {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(fd, one[:])
}
