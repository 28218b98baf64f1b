package virtio

// Snapshot state of a transport and its device: the registers the
// driver wrote (device status, feature selectors, negotiated features,
// each queue's size, addresses and enable), the rings' indices (last
// avail, used idx and flags, the event-idx window), the interrupt state
// (ISR, config generation, and on PCI the config space, MSI-X table and
// the vectors chosen), and the device's own state, which the device
// encodes (Stateful). Restore rebuilds an active device without running
// Activate: its rings resume at the saved indices and the device takes
// its state from the bytes, so nothing the driver already saw happens
// twice.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Stateful is a device whose state snapshots carry.
type Stateful interface {
	// SaveState returns the device's state; the VM is paused. The
	// device calls rings exactly once, while nothing moves its rings,
	// and from then on touches neither guest memory nor its rings until
	// Thaw: what the snapshot holds of RAM and of the rings must agree.
	SaveState(rings func()) ([]byte, error)
	// Thaw lets a device SaveState froze run again (also after a failed
	// SaveState).
	Thaw()
	// RestoreState sets the device from SaveState's bytes before any
	// vCPU runs. ctx is non-nil when the driver had set DRIVER_OK: it
	// takes the place of Activate, with the rings at their saved
	// indices; chains the device held are taken again with
	// Queue.Resume. The device may stay frozen (raising no interrupt)
	// until Thaw, which the machine calls once the vCPUs have their
	// state.
	RestoreState(ctx *ActivateContext, data []byte) error
}

// errNotStateful refuses to save a device that cannot restore.
var errNotStateful = errors.New("the device has no snapshot support")

// Limits on what a transport state may declare.
const maxDeviceStateLen = 64 << 20

type transportHeader struct {
	Offered, DriverFeatures                          uint64
	Status, DevFeaturesSel, DrvFeaturesSel, QueueSel uint32
	Queues                                           uint32
}

type queueState struct {
	Desc, Avail, Used                        uint64
	Size                                     uint16
	Ready, Active, Notify, Broken            uint8
	LastAvail, UsedIdx, UsedFlags, Signalled uint16
}

// ringState is a Queue's indices as saved.
func (q *Queue) state(s *queueState) {
	s.Active = 1
	s.LastAvail, s.UsedIdx, s.UsedFlags, s.Signalled = q.lastAvail, q.usedIdx, q.usedFlags, q.signalled
	s.Notify = b2u(q.notify)
	s.Broken = b2u(q.broken != nil)
}

// Resume takes again the chain at head that the device had popped
// before a snapshot (a restored device's held chain): it is walked from
// the descriptor table as Pop would, and counts as in flight.
func (q *Queue) Resume(head uint16) (*Chain, error) {
	if err := q.usable(); err != nil {
		return nil, err
	}
	if head >= q.size {
		return nil, fmt.Errorf("queue %d: held chain head %d out of range (queue size %d)", q.index, head, q.size)
	}
	if q.inflight >= int(q.size) {
		return nil, fmt.Errorf("queue %d: more than %d chains held", q.index, q.size)
	}
	c := q.newChain()
	w := walker{mem: q.mem, indirect: q.indirect, c: c}
	if err := w.walk(q.desc, int(q.size), head); err != nil {
		q.recycle(c)
		return nil, fmt.Errorf("queue %d: held chain at head %d: %w", q.index, head, err)
	}
	c.Head, c.q = head, q
	q.inflight++
	return c, nil
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// saveTransport encodes the registers (mu held by the caller) and the
// queue configuration; the ring indices are filled in by the device's
// call to rings.
func (t *transport) saveRegs() (transportHeader, []queueState, []*Queue) {
	h := transportHeader{Offered: t.offered, DriverFeatures: t.driverFeatures, Status: t.status,
		DevFeaturesSel: t.devFeaturesSel, DrvFeaturesSel: t.drvFeaturesSel, QueueSel: t.queueSel,
		Queues: uint32(len(t.queues))}
	qs := make([]queueState, len(t.queues))
	rings := make([]*Queue, len(t.queues))
	for i, q := range t.queues {
		qs[i] = queueState{Desc: q.descAddr, Avail: q.availAddr, Used: q.usedAddr, Size: q.size, Ready: b2u(q.ready)}
		rings[i] = q.ring
	}
	return h, qs, rings
}

// saveDevice asks the device for its state; rings fills qs from the
// active rings while the device holds them still.
func (t *transport) saveDevice(qs []queueState, rings []*Queue) ([]byte, error) {
	s, ok := t.dev.(Stateful)
	if !ok {
		return nil, fmt.Errorf("%s: %w", t.name, errNotStateful)
	}
	called := false
	b, err := s.SaveState(func() {
		called = true
		for i, r := range rings {
			if r != nil && !r.stopped {
				r.state(&qs[i])
			}
		}
	})
	if err == nil && !called {
		err = errors.New("the device did not report its rings")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	return b, nil
}

// thaw lets the device run again after a save.
func (t *transport) thaw() {
	if s, ok := t.dev.(Stateful); ok {
		s.Thaw()
	}
}

// encodeTransport lays out the header, the queues, then each part
// (interrupt state, device state) with a u32 length in front.
func encodeTransport(h transportHeader, qs []queueState, parts ...[]byte) []byte {
	b, _ := binary.Append(nil, binary.LittleEndian, &h)
	for i := range qs {
		b, _ = binary.Append(b, binary.LittleEndian, &qs[i])
	}
	for _, p := range parts {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// decoder reads a transport state, refusing anything short or too long.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fixed(v any) {
	if d.err != nil {
		return
	}
	n := binary.Size(v)
	if n < 0 || len(d.b) < n {
		d.err = fmt.Errorf("truncated (%d bytes left, %d needed)", len(d.b), n)
		return
	}
	if _, err := binary.Decode(d.b[:n], binary.LittleEndian, v); err != nil {
		d.err = err
		return
	}
	d.b = d.b[n:]
}

func (d *decoder) part() []byte {
	var n uint32
	d.fixed(&n)
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.b)) || n > maxDeviceStateLen {
		d.err = fmt.Errorf("a part of %d bytes with %d left", n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// decodeTransport parses what encodeTransport wrote, with nparts parts.
func (t *transport) decodeTransport(b []byte, nparts int) (transportHeader, []queueState, [][]byte, error) {
	d := &decoder{b: b}
	var h transportHeader
	d.fixed(&h)
	if d.err == nil && h.Queues != uint32(len(t.queues)) {
		return h, nil, nil, fmt.Errorf("%s: saved with %d queues, this device has %d", t.name, h.Queues, len(t.queues))
	}
	qs := make([]queueState, len(t.queues))
	for i := range qs {
		d.fixed(&qs[i])
	}
	parts := make([][]byte, nparts)
	for i := range parts {
		parts[i] = d.part()
	}
	switch {
	case d.err != nil:
		return h, nil, nil, fmt.Errorf("%s state: %w", t.name, d.err)
	case len(d.b) != 0:
		return h, nil, nil, fmt.Errorf("%s state: %d bytes after the end", t.name, len(d.b))
	case h.Offered != t.offered:
		return h, nil, nil, fmt.Errorf("%s: saved offering features %#x, this device offers %#x", t.name, h.Offered, t.offered)
	case h.Status > 0xff:
		return h, nil, nil, fmt.Errorf("%s: saved device status %#x is not a status", t.name, h.Status)
	case h.Status&statusFeaturesOK != 0 && h.DriverFeatures&^h.Offered != 0:
		return h, nil, nil, fmt.Errorf("%s: saved driver features %#x were not offered (%#x)", t.name, h.DriverFeatures, h.Offered)
	}
	for i, q := range qs {
		if q.Ready > 1 || q.Active > 1 || q.Notify > 1 || q.Broken > 1 {
			return h, nil, nil, fmt.Errorf("%s: queue %d: corrupt flags", t.name, i)
		}
	}
	return h, qs, parts, nil
}

// restore sets the registers and queues from a decoded state and then
// the device: as Activate would have left it when the driver had set
// DRIVER_OK, else as it was before. mu must be held.
func (t *transport) restore(h transportHeader, qs []queueState, devState []byte) error {
	t.status, t.driverFeatures = h.Status, h.DriverFeatures
	t.devFeaturesSel, t.drvFeaturesSel, t.queueSel = h.DevFeaturesSel, h.DrvFeaturesSel, h.QueueSel
	for i, q := range t.queues {
		s := qs[i]
		q.size, q.descAddr, q.availAddr, q.usedAddr, q.ready = s.Size, s.Desc, s.Avail, s.Used, s.Ready == 1
	}
	s, ok := t.dev.(Stateful)
	if !ok {
		return fmt.Errorf("%s: %w", t.name, errNotStateful)
	}
	if t.status&statusDriverOK == 0 || t.status&statusNeedsReset != 0 {
		if err := s.RestoreState(nil, devState); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		return nil
	}
	rings := make([]*Queue, len(t.queues))
	for i, q := range t.queues {
		st := qs[i]
		if st.Active == 0 {
			continue
		}
		if !q.ready {
			return fmt.Errorf("%s: queue %d: saved active but not enabled", t.name, i)
		}
		r, err := q.Activate(t.mem, t.driverFeatures)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		r.lastAvail, r.usedIdx, r.usedFlags, r.signalled = st.LastAvail, st.UsedIdx, st.UsedFlags, st.Signalled
		r.notify = st.Notify == 1
		if st.Broken == 1 {
			r.fail(errors.New("broken before the snapshot"))
		}
		rings[i] = r
	}
	notifiers := make([]Notifier, len(t.notify))
	for i, fd := range t.notify {
		notifiers[i] = Notifier{FD: fd}
	}
	ctx := &ActivateContext{Mem: t.mem, Features: t.driverFeatures, Queues: rings, Notifiers: notifiers, Interrupt: t.intr}
	if err := s.RestoreState(ctx, devState); err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	return nil
}

// mmioIntrState is virtio-mmio's interrupt state.
type mmioIntrState struct{ ISR, Generation uint32 }

// SaveState returns the transport's and the device's state; the VM
// must be paused. The device stays frozen until Thaw.
func (t *MMIO) SaveState() ([]byte, error) {
	t.mu.Lock()
	h, qs, rings := t.saveRegs()
	t.mu.Unlock()
	dev, err := t.saveDevice(qs, rings)
	if err != nil {
		return nil, err
	}
	is, _ := binary.Append(nil, binary.LittleEndian, &mmioIntrState{ISR: t.irq.isr.Load(), Generation: t.irq.generation.Load()})
	return encodeTransport(h, qs, is, dev), nil
}

// Thaw lets the device run again after SaveState.
func (t *MMIO) Thaw() { t.thaw() }

// RestoreState sets the transport and its device from SaveState's
// bytes, before any vCPU runs.
func (t *MMIO) RestoreState(b []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, qs, parts, err := t.decodeTransport(b, 2)
	if err != nil {
		return err
	}
	var is mmioIntrState
	d := &decoder{b: parts[0]}
	d.fixed(&is)
	if d.err != nil || len(d.b) != 0 || is.ISR > isrUsedBuffer|isrConfigChanged {
		return fmt.Errorf("%s: corrupt interrupt state", t.name)
	}
	if err := t.restore(h, qs, parts[1]); err != nil {
		return err
	}
	t.irq.isr.Store(is.ISR)
	t.irq.generation.Store(is.Generation)
	return nil
}

// pciIntrState is virtio-pci's interrupt state; the queue vectors
// follow it.
type pciIntrState struct {
	Generation, ConfigVec uint32
	ISR                   uint8
}

// SaveState returns the function's config space, MSI-X state, the
// transport's and the device's state; the VM must be paused. The device
// stays frozen until Thaw.
func (t *PCI) SaveState() ([]byte, error) {
	t.mu.Lock()
	h, qs, rings := t.saveRegs()
	t.mu.Unlock()
	dev, err := t.saveDevice(qs, rings)
	if err != nil {
		return nil, err
	}
	t.irq.mu.Lock()
	isr := t.irq.isr
	t.irq.mu.Unlock()
	is, _ := binary.Append(nil, binary.LittleEndian, &pciIntrState{Generation: t.irq.generation.Load(), ConfigVec: t.irq.configVec.Load(), ISR: isr})
	for i := range t.irq.queueVec {
		is = binary.LittleEndian.AppendUint32(is, t.irq.queueVec[i].Load())
	}
	return encodeTransport(h, qs, t.cfg.SaveState(), t.msix.SaveState(), is, dev), nil
}

// Thaw lets the device run again after SaveState.
func (t *PCI) Thaw() { t.thaw() }

// RestoreState sets the function, the transport and its device from
// SaveState's bytes, before any vCPU runs.
func (t *PCI) RestoreState(b []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, qs, parts, err := t.decodeTransport(b, 4)
	if err != nil {
		return err
	}
	var is pciIntrState
	d := &decoder{b: parts[2]}
	d.fixed(&is)
	vecs := make([]uint32, len(t.irq.queueVec))
	for i := range vecs {
		d.fixed(&vecs[i])
	}
	bad := func(v uint32) bool { return v != pciNoVector && v >= uint32(t.msix.Vectors()) }
	if d.err != nil || len(d.b) != 0 || is.ISR > isrUsedBuffer|isrConfigChanged || bad(is.ConfigVec) {
		return fmt.Errorf("%s: corrupt interrupt state", t.name)
	}
	for i, v := range vecs {
		if bad(v) {
			return fmt.Errorf("%s: queue %d: saved MSI-X vector %d out of range", t.name, i, v)
		}
	}
	if err := t.cfg.RestoreState(parts[0]); err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	if err := t.msix.RestoreState(parts[1]); err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	if err := t.restore(h, qs, parts[3]); err != nil {
		return err
	}
	t.irq.generation.Store(is.Generation)
	t.irq.configVec.Store(is.ConfigVec)
	for i, v := range vecs {
		t.irq.queueVec[i].Store(v)
	}
	t.irq.mu.Lock()
	t.irq.isr = is.ISR
	t.irq.mu.Unlock()
	t.irq.update()
	return nil
}
