package virtioserial

// Snapshot state: what the driver set up (DEVICE_READY, each port's
// PORT_READY and guest-open), the control messages not yet delivered,
// and each port's data in flight: the held TX chain and the offset
// written so far, the RX buffer popped for data that had not come, what
// a departed peer sent that the guest had no room for, and the console
// ring's contents. Host connections are not state: chardevs are
// re-created from the command line, and a restored guest is told each
// port's host side as it is now (PORT_OPEN 0/1), as on any reconnect.
//
// The state is taken on the event loop, the owner of port state, which
// then leaves guest memory and the rings alone (frozen) until Thaw, so
// the rings' indices and RAM in the snapshot agree with it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"vmm/devices/virtio"
)

const (
	stateVersion = 1
	// maxLeftover bounds a saved port's salvaged bytes (a socket
	// buffer's worth is what salvage can hold).
	maxLeftover = 64 << 20
)

var errLoopEnded = errors.New("virtio-serial: the event loop has ended")

// onLoop runs f on the event loop with mu held and waits for it; unlike
// do it refuses once the loop has ended: a snapshot needs the owner.
func (d *Device) onLoop(f func()) error {
	if d.loop == nil {
		d.locked(f)
		return nil
	}
	if !d.loop.Do(func() { d.locked(f) }) {
		return errLoopEnded
	}
	return nil
}

// SaveState implements virtio.Stateful: the device state, taken on the
// event loop; the device stays frozen until Thaw.
func (d *Device) SaveState(rings func()) ([]byte, error) {
	var b []byte
	err := d.onLoop(func() {
		d.frozen = true
		rings()
		b = d.encodeLocked()
	})
	return b, err
}

// Thaw implements virtio.Stateful: the device moves data again,
// starting with whatever the guest and the host did while it was frozen.
// It posts the work to the event loop and does not wait, so that it may
// be called from anywhere, the loop included.
func (d *Device) Thaw() {
	thaw := func() {
		if !d.frozen {
			return
		}
		d.frozen = false
		d.kickAll()
	}
	if d.loop == nil || !d.loop.Post(func() { d.locked(thaw) }) {
		d.locked(thaw)
	}
}

// kickAll looks at every queue, as if each had been kicked. Caller
// holds mu.
func (d *Device) kickAll() {
	if !d.active {
		return
	}
	if d.multiport {
		d.flushControl()
		d.readControl()
	}
	for _, p := range d.sortedPortsLocked() {
		p.pump()
	}
}

// encodeLocked lays out the device state. Caller holds mu.
func (d *Device) encodeLocked() []byte {
	var e enc
	e.u8(stateVersion)
	e.u32(uint32(d.maxPorts))
	e.u8(b2u(d.active))
	e.u8(b2u(d.multiport))
	e.u8(b2u(d.driverReady))
	e.u64(d.ctrlDropped)
	e.u32(uint32(len(d.ctrlPending)))
	for _, m := range d.ctrlPending {
		e.u32(m.id)
		e.u16(m.event)
		e.u16(m.value)
		e.bytes(m.payload)
	}
	ports := d.sortedPortsLocked()
	e.u32(uint32(len(ports)))
	for _, p := range ports {
		e.u32(p.id)
		e.bytes([]byte(p.name))
		e.u8(b2u(p.console))
		e.u8(b2u(p.ready))
		e.u8(b2u(p.guestOpen))
		e.u8(b2u(p.throttled))
		e.u8(b2u(p.txHeld != nil))
		if p.txHeld != nil {
			e.u16(p.txHeld.Head)
			e.u32(uint32(p.tx.Consumed()))
		} else {
			e.u16(0)
			e.u32(0)
		}
		e.u8(b2u(p.rxHeld != nil))
		if p.rxHeld != nil {
			e.u16(p.rxHeld.Head)
		} else {
			e.u16(0)
		}
		e.bytes(p.leftover)
		var ring []byte
		if p.consoleBuf != nil {
			for _, c := range p.consoleBuf.Chunks() {
				ring = append(ring, c...)
			}
		}
		e.bytes(ring)
		for _, v := range []uint64{p.bytesIn, p.bytesOut, p.dropped, p.throttles, p.connections} {
			e.u64(v)
		}
	}
	return e.b
}

// savedPort is one port as decoded, before anything is applied.
type savedPort struct {
	id                                    uint32
	name                                  string
	console, ready, guestOpen, throttled  bool
	hasTX, hasRX                          bool
	txHead, rxHead                        uint16
	txOffset                              uint32
	leftover, ring                        []byte
	bytesIn, bytesOut, dropped, throttles uint64
	connections                           uint64
}

type savedDevice struct {
	maxPorts                 uint32
	active, multiport, ready bool
	ctrlDropped              uint64
	ctrl                     []controlMsg
	ports                    []savedPort
}

func decodeState(b []byte) (*savedDevice, error) {
	r := &dec{b: b}
	if v := r.u8(); r.err == nil && v != stateVersion {
		return nil, fmt.Errorf("virtio-serial state version %d; this vmm reads %d", v, stateVersion)
	}
	s := &savedDevice{maxPorts: r.u32()}
	s.active, s.multiport, s.ready = r.flag(), r.flag(), r.flag()
	s.ctrlDropped = r.u64()
	n := r.count(maxPendingControl, 12)
	for range n {
		m := controlMsg{id: r.u32(), event: r.u16(), value: r.u16()}
		m.payload = r.bytes(maxNameLen)
		s.ctrl = append(s.ctrl, m)
	}
	n = r.count(MaxPorts, 20)
	for range n {
		p := savedPort{id: r.u32(), name: string(r.bytes(maxNameLen))}
		p.console, p.ready, p.guestOpen, p.throttled, p.hasTX = r.flag(), r.flag(), r.flag(), r.flag(), r.flag()
		p.txHead, p.txOffset = r.u16(), r.u32()
		p.hasRX = r.flag()
		p.rxHead = r.u16()
		p.leftover = r.bytes(maxLeftover)
		p.ring = r.bytes(maxLeftover)
		p.bytesIn, p.bytesOut, p.dropped, p.throttles, p.connections = r.u64(), r.u64(), r.u64(), r.u64(), r.u64()
		s.ports = append(s.ports, p)
	}
	if r.err != nil {
		return nil, fmt.Errorf("virtio-serial state: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("virtio-serial state: %d bytes after the end", len(r.b))
	}
	return s, nil
}

// maxNameLen bounds a saved port name or control payload.
const maxNameLen = 4096

// RestoreState implements virtio.Stateful: the ports' guest state and
// data in flight come back, on the event loop. With ctx (the driver had
// set DRIVER_OK) the device is active again on the saved rings without
// anything Activate would announce; then every ready port is told its
// host side as it is now, and data moves: held guest output goes to the
// host peer first. The device stays frozen until Thaw, which the
// machine calls once the vCPUs have their state.
func (d *Device) RestoreState(ctx *virtio.ActivateContext, data []byte) error {
	s, err := decodeState(data)
	if err != nil {
		return err
	}
	var rerr error
	err = d.onLoop(func() { rerr = d.restoreLocked(ctx, s) })
	if err != nil {
		return err
	}
	return rerr
}

// restoreLocked checks everything, then applies it. Caller holds mu.
func (d *Device) restoreLocked(ctx *virtio.ActivateContext, s *savedDevice) error {
	if int(s.maxPorts) != d.maxPorts {
		return fmt.Errorf("virtio-serial: saved with max_ports=%d, this device has %d", s.maxPorts, d.maxPorts)
	}
	if s.active != (ctx != nil) {
		return fmt.Errorf("virtio-serial: saved active=%v, but the transport says %v", s.active, ctx != nil)
	}
	if ctx != nil {
		if len(ctx.Queues) != len(d.QueueSizes()) || len(ctx.Notifiers) != len(ctx.Queues) {
			return fmt.Errorf("virtio-serial: restored with %d queues, want %d", len(ctx.Queues), len(d.QueueSizes()))
		}
		if s.multiport != (ctx.Features&FeatureMultiport != 0) {
			return fmt.Errorf("virtio-serial: saved multiport=%v, negotiated features %#x disagree", s.multiport, ctx.Features)
		}
	}
	if len(s.ports) != len(d.ports) {
		return fmt.Errorf("virtio-serial: the snapshot has %d ports, this device %d", len(s.ports), len(d.ports))
	}
	for _, sp := range s.ports {
		p := d.ports[sp.id]
		switch {
		case p == nil:
			return fmt.Errorf("virtio-serial: the snapshot has port %d (%q), this device has none", sp.id, sp.name)
		case p.name != sp.name || p.console != sp.console:
			return fmt.Errorf("virtio-serial: port %d: saved as %q (console %v), here %q (console %v)", sp.id, sp.name, sp.console, p.name, p.console)
		case !s.active && (sp.ready || sp.hasTX || sp.hasRX || len(sp.leftover) > 0):
			return fmt.Errorf("virtio-serial: port %d: guest state on an inactive device", sp.id)
		case !sp.console && len(sp.ring) > 0:
			return fmt.Errorf("virtio-serial: port %d: console bytes saved for a serial port", sp.id)
		}
	}
	// Chains held at the save are walked again (their descriptors are
	// in the restored RAM); any failure leaves the device untouched.
	type held struct{ tx, rx *virtio.Chain }
	chains := map[uint32]held{}
	for _, sp := range s.ports {
		var h held
		if sp.hasTX {
			q := ctxQueue(ctx, rxQueueIndex(sp.id)+1)
			if q == nil {
				return fmt.Errorf("virtio-serial: port %d: a held TX chain on a queue that is not active", sp.id)
			}
			c, err := q.Resume(sp.txHead)
			if err != nil {
				return fmt.Errorf("virtio-serial: port %d: %w", sp.id, err)
			}
			if sp.txOffset > c.ReadableLen {
				return fmt.Errorf("virtio-serial: port %d: held TX offset %d beyond its %d bytes", sp.id, sp.txOffset, c.ReadableLen)
			}
			h.tx = c
		}
		if sp.hasRX {
			q := ctxQueue(ctx, rxQueueIndex(sp.id))
			if q == nil {
				return fmt.Errorf("virtio-serial: port %d: a held RX buffer on a queue that is not active", sp.id)
			}
			c, err := q.Resume(sp.rxHead)
			if err != nil {
				return fmt.Errorf("virtio-serial: port %d: %w", sp.id, err)
			}
			h.rx = c
		}
		chains[sp.id] = h
	}
	if ctx != nil {
		d.queues, d.notifiers, d.intr = ctx.Queues, ctx.Notifiers, ctx.Interrupt
		d.multiport = s.multiport
		for i, n := range ctx.Notifiers {
			qi, fd := i, n.FD
			w, err := d.loop.Add(fd, unix.EPOLLIN, func(uint32) { d.notified(qi, fd) })
			if err != nil {
				d.deactivate()
				return fmt.Errorf("virtio-serial: queue %d notifier: %w", i, err)
			}
			d.notifyW = append(d.notifyW, w)
		}
		d.active = true
	}
	d.driverReady, d.ctrlDropped, d.ctrlPending = s.ready, s.ctrlDropped, s.ctrl
	for _, sp := range s.ports {
		p := d.ports[sp.id]
		p.ready, p.guestOpen = sp.ready, sp.guestOpen
		h := chains[sp.id]
		p.txHeld, p.rxHeld = h.tx, h.rx
		p.tx = virtio.Reader{}
		if h.tx != nil {
			p.tx = virtio.NewReader(h.tx)
			p.tx.Advance(int(sp.txOffset))
		}
		p.leftover = sp.leftover
		if sp.throttled {
			p.throttled, p.throttledAt = true, time.Now()
		}
		if p.consoleBuf != nil {
			p.consoleBuf.Consume(p.consoleBuf.Len())
			p.consoleBuf.Write(sp.ring)
		}
		p.bytesIn, p.bytesOut, p.dropped, p.throttles, p.connections = sp.bytesIn, sp.bytesOut, sp.dropped, sp.throttles, sp.connections
	}
	// Frozen until Thaw, when the vCPUs have their state (an interrupt
	// raised before the LAPIC is restored would be lost).
	d.frozen = true
	if d.active && d.multiport {
		// The host sides are new: the guest learns each as it is now
		// (queued here, delivered at Thaw).
		for _, p := range d.sortedPortsLocked() {
			if p.ready {
				d.sendControl(controlMsg{id: p.id, event: eventPortOpen, value: uint16(b2u(p.connected))})
			}
		}
	}
	return nil
}

func ctxQueue(ctx *virtio.ActivateContext, qi int) *virtio.Queue {
	if ctx == nil || qi < 0 || qi >= len(ctx.Queues) {
		return nil
	}
	return ctx.Queues[qi]
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// enc and dec are the little-endian encoding of the device state.
type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *enc) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *enc) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *enc) bytes(p []byte) {
	e.u32(uint32(len(p)))
	e.b = append(e.b, p...)
}

type dec struct {
	b   []byte
	err error
}

func (r *dec) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("truncated (%d bytes left, %d needed)", len(r.b), n)
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *dec) u8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *dec) flag() bool {
	v := r.u8()
	if v > 1 && r.err == nil {
		r.err = fmt.Errorf("flag byte %d", v)
	}
	return v == 1
}

func (r *dec) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *dec) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *dec) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// count reads a u32 count of items of at least minSize bytes each,
// refusing more than max or more than the bytes left could hold.
func (r *dec) count(max, minSize int) int {
	n := r.u32()
	if r.err == nil && (n > uint32(max) || uint64(n)*uint64(minSize) > uint64(len(r.b))) {
		r.err = fmt.Errorf("count %d (at most %d, %d bytes left)", n, max, len(r.b))
		return 0
	}
	return int(n)
}

func (r *dec) bytes(max int) []byte {
	n := r.u32()
	if r.err == nil && n > uint32(max) {
		r.err = fmt.Errorf("a length of %d (at most %d)", n, max)
		return nil
	}
	p := r.take(int(n))
	if p == nil {
		return nil
	}
	return append([]byte(nil), p...)
}

var _ virtio.Stateful = (*Device)(nil)
