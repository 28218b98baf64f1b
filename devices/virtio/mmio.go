package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"

	"vmm/kvm"
)

// KVM is what the transport needs from the hypervisor; *kvm.VM satisfies it.
type KVM interface {
	IOEventFD(o kvm.IOEventFD) error
	IRQFD(fd int, gsi uint32) error
}

// irqfdDeassigner is the optional part of KVM that Close uses; without
// it, closing the eventfd releases the irqfd (KVM sees the hangup).
type irqfdDeassigner interface {
	IRQFDDeassign(fd int, gsi uint32) error
}

// offeredFeatures are what the transport adds to every device's own.
const offeredFeatures = FeatureVersion1 | FeatureRingEventIdx | FeatureRingIndirectDesc

// transportFeatures are bits 24 to 40, which describe the ring and the
// transport (virtio 1.2 §6); only the transport may offer them.
const transportFeatures = (1<<41 - 1) &^ (1<<24 - 1)

// MMIO is a virtio-mmio version 2 transport (virtio 1.2 §4.2) for one
// device. Read and Write run on vCPU threads. Guest kicks go through
// ioeventfds and interrupts through an irqfd, so neither leaves the
// kernel in the common case.
type MMIO struct {
	vm   KVM
	base uint64
	gsi  uint32
	irq  mmioInterrupt

	mu sync.Mutex
	// Transport state; guarded by mu.
	transport
	ioeventfds int  // how many notify eventfds KVM has
	irqfdBound bool // KVM has the interrupt eventfd
	closed     bool
}

// NewMMIO creates the transport for dev at guest physical base, with its
// interrupt on gsi, and registers its eventfds with vm. It offers the
// device's features with bits 24-40 replaced by its own: VERSION_1,
// EVENT_IDX and INDIRECT_DESC.
func NewMMIO(dev Device, mem Memory, vm KVM, base uint64, gsi uint32) (*MMIO, error) {
	sizes := dev.QueueSizes()
	for i, n := range sizes {
		if n == 0 || n&(n-1) != 0 || n > maxQueueSize {
			return nil, fmt.Errorf("virtio-mmio at %#x: queue %d: max size %d is not a power of 2 in [1, %d]", base, i, n, maxQueueSize)
		}
	}
	t := &MMIO{vm: vm, base: base, gsi: gsi}
	t.transport = transport{name: fmt.Sprintf("virtio-mmio at %#x", base), dev: dev, mem: mem,
		offered: dev.Features()&^transportFeatures | offeredFeatures, intr: &t.irq}
	t.irq.fd.Store(-1)
	if err := t.setupFDs(sizes); err != nil {
		t.Close()
		return nil, fmt.Errorf("virtio-mmio at %#x: %w", base, err)
	}
	return t, nil
}

func (t *MMIO) setupFDs(sizes []uint16) error {
	fd, err := newEventFD()
	if err != nil {
		return fmt.Errorf("interrupt eventfd: %w", err)
	}
	t.irq.fd.Store(int32(fd))
	for i, n := range sizes {
		t.queues = append(t.queues, NewQueueConfig(i, n))
		nfd, err := newEventFD()
		if err != nil {
			return fmt.Errorf("queue %d: notify eventfd: %w", i, err)
		}
		t.notify = append(t.notify, nfd)
		if err := t.vm.IOEventFD(t.ioeventfd(i, false)); err != nil {
			return fmt.Errorf("queue %d: %w", i, err)
		}
		t.ioeventfds++
	}
	if err := t.vm.IRQFD(fd, t.gsi); err != nil {
		return err
	}
	t.irqfdBound = true
	return nil
}

// ioeventfd describes queue i's kick: a 4-byte write of i to QueueNotify.
func (t *MMIO) ioeventfd(i int, deassign bool) kvm.IOEventFD {
	match := uint64(i)
	return kvm.IOEventFD{Addr: t.base + regQueueNotify, Len: 4, FD: t.notify[i], Datamatch: &match, Deassign: deassign}
}

// Size is the length of the register window.
func (t *MMIO) Size() uint64 { return mmioSize }

// CmdlineArg is the kernel parameter that makes Linux (with
// VIRTIO_MMIO_CMDLINE_DEVICES) probe the device: size@base:irq, the
// size in memparse syntax.
func (t *MMIO) CmdlineArg() string {
	return fmt.Sprintf("virtio_mmio.device=%dK@%#x:%d", mmioSize/1024, t.base, t.gsi)
}

// Close resets the device (so it stops using the eventfds), removes the
// eventfds from KVM and closes them.
func (t *MMIO) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.status != 0 {
		t.reset()
	}
	var errs []error
	for i := range t.ioeventfds {
		errs = append(errs, t.vm.IOEventFD(t.ioeventfd(i, true)))
	}
	fd := int(t.irq.fd.Swap(-1))
	if d, ok := t.vm.(irqfdDeassigner); ok && t.irqfdBound {
		errs = append(errs, d.IRQFDDeassign(fd, t.gsi))
	}
	for _, nfd := range append(t.notify, fd) {
		if nfd >= 0 {
			errs = append(errs, unix.Close(nfd))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("virtio-mmio at %#x: close: %w", t.base, err)
	}
	return nil
}

// Read handles a guest load at offset within the window. Registers need
// 32-bit aligned accesses (anything else reads 0); the config space takes
// 1, 2, 4 or 8 bytes.
func (t *MMIO) Read(offset uint64, data []byte) {
	clear(data)
	if offset >= regConfig {
		if configAccess(offset, len(data)) {
			t.dev.ReadConfig(offset-regConfig, data)
		}
		return
	}
	if len(data) != 4 || offset%4 != 0 {
		t.ignored("read", offset, len(data))
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	binary.LittleEndian.PutUint32(data, t.readReg(offset))
}

// Write handles a guest store at offset within the window.
func (t *MMIO) Write(offset uint64, data []byte) {
	if offset >= regConfig {
		if configAccess(offset, len(data)) {
			t.dev.WriteConfig(offset-regConfig, data)
		}
		return
	}
	if offset == regQueueNotify && (len(data) == 1 || len(data) == 2 || len(data) == 4) {
		// Kicks KVM did not absorb (a queue without an ioeventfd match,
		// or an access of another size) are forwarded the same way.
		var v [4]byte
		copy(v[:], data)
		t.kick(binary.LittleEndian.Uint32(v[:]))
		return
	}
	if len(data) != 4 || offset%4 != 0 {
		t.ignored("write", offset, len(data))
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writeReg(offset, binary.LittleEndian.Uint32(data))
}

func configAccess(offset uint64, n int) bool {
	return (n == 1 || n == 2 || n == 4 || n == 8) && offset < mmioSize && uint64(n) <= mmioSize-offset
}

func (t *MMIO) ignored(what string, offset uint64, n int) {
	slog.Debug("virtio-mmio: access ignored", "base", fmt.Sprintf("%#x", t.base), "op", what, "offset", fmt.Sprintf("%#x", offset), "size", n)
}

func (t *MMIO) kick(q uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || q >= uint32(len(t.notify)) {
		t.ignored("notify", regQueueNotify, 4)
		return
	}
	kickEventFD(t.notify[q])
}

// selected is the queue QueueSel names, or nil; mu must be held.
func (t *MMIO) selected() *QueueConfig {
	if t.queueSel < uint32(len(t.queues)) {
		return t.queues[t.queueSel]
	}
	return nil
}

// half is the 32-bit half of v that a Low (offset bit 2 clear) or High
// register shows.
func half(v uint64, offset uint64) uint32 {
	if offset&4 != 0 {
		return uint32(v >> 32)
	}
	return uint32(v)
}

// setHalf replaces the half of old that offset names with v.
func setHalf(old uint64, offset uint64, v uint32) uint64 {
	if offset&4 != 0 {
		return old&0xffffffff | uint64(v)<<32
	}
	return old&^0xffffffff | uint64(v)
}

// readReg returns a register's value; mu must be held.
func (t *MMIO) readReg(offset uint64) uint32 {
	switch offset {
	case regMagicValue:
		return mmioMagic
	case regVersion:
		return mmioVersion
	case regDeviceID:
		return t.dev.Type()
	case regVendorID:
		return mmioVendorID
	case regDeviceFeatures:
		if t.devFeaturesSel < 2 {
			return half(t.offered, uint64(t.devFeaturesSel)*4)
		}
		return 0
	case regInterruptStatus:
		return t.irq.isr.Load()
	case regStatus:
		return t.status
	case regConfigGeneration:
		return t.irq.generation.Load()
	case regSHMLenLow, regSHMLenHigh, regSHMBaseLow, regSHMBaseHigh:
		return 0xffffffff // no shared memory regions
	}
	q := t.selected()
	if q == nil {
		return 0
	}
	switch offset {
	case regQueueNumMax:
		return uint32(q.MaxSize())
	case regQueueNum:
		return uint32(q.Size())
	case regQueueReady:
		if q.Ready() {
			return 1
		}
	case regQueueDescLow, regQueueDescHigh:
		return half(q.DescAddr(), offset)
	case regQueueDriverLow, regQueueDriverHigh:
		return half(q.AvailAddr(), offset)
	case regQueueDeviceLow, regQueueDeviceHigh:
		return half(q.UsedAddr(), offset)
	}
	return 0
}

// writeReg stores to a register; mu must be held.
func (t *MMIO) writeReg(offset uint64, v uint32) {
	switch offset {
	case regDeviceFeaturesSel:
		t.devFeaturesSel = v
	case regDriverFeaturesSel:
		t.drvFeaturesSel = v
	case regDriverFeatures:
		if t.status&statusFeaturesOK != 0 || t.drvFeaturesSel >= 2 {
			t.ignored("write", offset, 4)
			return
		}
		t.driverFeatures = setHalf(t.driverFeatures, uint64(t.drvFeaturesSel)*4, v)
	case regQueueSel:
		t.queueSel = v
	case regInterruptACK:
		t.irq.ack(v)
	case regStatus:
		t.setStatus(v)
	case regQueueNum, regQueueReady, regQueueDescLow, regQueueDescHigh,
		regQueueDriverLow, regQueueDriverHigh, regQueueDeviceLow, regQueueDeviceHigh:
		t.writeQueue(offset, v)
	default:
		t.ignored("write", offset, 4)
	}
}

// writeQueue configures the selected queue, which only a driver that has
// not set DRIVER_OK may do, and only while the queue is not ready
// (QueueReady itself may go back to 0: Linux does so on probe errors).
func (t *MMIO) writeQueue(offset uint64, v uint32) {
	q := t.selected()
	if q == nil || t.status&statusDriverOK != 0 || offset != regQueueReady && q.Ready() {
		t.ignored("write", offset, 4)
		return
	}
	switch offset {
	case regQueueNum:
		if v > 0xffff {
			v = 0 // not a size: Activate will refuse it
		}
		q.SetSize(uint16(v))
	case regQueueReady:
		q.SetReady(v&1 != 0)
	case regQueueDescLow, regQueueDescHigh:
		q.SetDescAddr(setHalf(q.DescAddr(), offset, v))
	case regQueueDriverLow, regQueueDriverHigh:
		q.SetAvailAddr(setHalf(q.AvailAddr(), offset, v))
	case regQueueDeviceLow, regQueueDeviceHigh:
		q.SetUsedAddr(setHalf(q.UsedAddr(), offset, v))
	}
}
