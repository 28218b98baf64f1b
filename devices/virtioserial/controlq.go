package virtioserial

import (
	"io"
	"log/slog"

	"vmm/devices/virtio"
)

const (
	ctrlRxQueue = 2
	ctrlTxQueue = 3
)

// sendControl queues a message for the guest and delivers what the
// guest has buffers for. A PORT_OPEN replaces an undelivered PORT_OPEN
// for the same port: only the latest state matters. Caller holds mu.
func (d *Device) sendControl(m controlMsg) {
	if !d.active || !d.multiport {
		return
	}
	if m.event == eventPortOpen {
		for i := range d.ctrlPending {
			if p := &d.ctrlPending[i]; p.event == eventPortOpen && p.id == m.id {
				p.value = m.value
				d.flushControl()
				return
			}
		}
	}
	if len(d.ctrlPending) >= maxPendingControl {
		d.ctrlDropped++
		if d.ctrlDropped == 1 {
			d.guestLog.Warn("guest posts no control buffers; dropping control messages", "msg", m.String())
		}
		return
	}
	d.ctrlPending = append(d.ctrlPending, m)
	d.flushControl()
}

// flushControl writes pending messages into control RX buffers.
// Caller holds mu.
func (d *Device) flushControl() {
	q := d.queue(ctrlRxQueue)
	if q == nil {
		return
	}
	delivered := false
	for len(d.ctrlPending) > 0 {
		c, err := q.PopOrEnableNotification()
		if err != nil {
			logQueueError("control rx", err)
			break
		}
		if c == nil {
			break
		}
		b := d.ctrlPending[0].encode()
		w := virtio.NewWriter(c)
		n, _ := w.Write(b)
		if n < len(b) {
			d.guestLog.Warn("control buffer too small; message truncated",
				"msg", d.ctrlPending[0].String(), "have", n, "need", len(b))
		}
		if err := q.PushUsed(c, uint32(n)); err != nil {
			logQueueError("control rx", err)
			break
		}
		d.ctrlPending = d.ctrlPending[1:]
		delivered = true
	}
	if delivered {
		d.pushed(q)
	}
}

// readControl handles the messages the guest sent. Caller holds mu.
func (d *Device) readControl() {
	q := d.queue(ctrlTxQueue)
	if q == nil {
		return
	}
	done := false
	for {
		c, err := q.PopOrEnableNotification()
		if err != nil {
			logQueueError("control tx", err)
			break
		}
		if c == nil {
			break
		}
		var hdr [controlHeaderSize]byte
		r := virtio.NewReader(c)
		n, _ := io.ReadFull(&r, hdr[:])
		m, derr := decodeControl(hdr[:n])
		if err := q.PushUsed(c, 0); err != nil {
			logQueueError("control tx", err)
			break
		}
		done = true
		if derr != nil {
			d.guestLog.Warn("bad control message from the guest", "err", derr)
			continue
		}
		d.handleControl(m)
	}
	if done {
		d.pushed(q)
	}
}

// handleControl acts on one guest message; repeats are harmless.
// Caller holds mu.
func (d *Device) handleControl(m controlMsg) {
	slog.Debug("virtio-serial: control from guest", "msg", m.String())
	switch m.event {
	case eventDeviceReady:
		if m.value != 1 {
			d.guestLog.Warn("guest driver failed to initialise", "value", m.value)
			return
		}
		d.driverReady = true
		for _, p := range d.sortedPortsLocked() {
			d.sendControl(controlMsg{id: p.id, event: eventPortAdd, value: 1})
		}
	case eventPortReady:
		p := d.ports[m.id]
		if p == nil {
			d.guestLog.Warn("PORT_READY for an unknown port", "port", m.id)
			return
		}
		if m.value != 1 {
			d.guestLog.Warn("guest could not add port", "port", m.id)
			return
		}
		p.ready = true
		if p.console {
			d.sendControl(controlMsg{id: p.id, event: eventConsolePort, value: 1})
		}
		if p.name != "" {
			d.sendControl(controlMsg{id: p.id, event: eventPortName, value: 1, payload: []byte(p.name)})
		}
		if p.connected {
			d.sendControl(controlMsg{id: p.id, event: eventPortOpen, value: 1})
		}
		p.pump()
	case eventPortOpen:
		p := d.ports[m.id]
		if p == nil {
			d.guestLog.Warn("PORT_OPEN for an unknown port", "port", m.id)
			return
		}
		p.setGuestOpen(m.value != 0)
		p.pump()
	default:
		slog.Debug("virtio-serial: ignoring control event", "msg", m.String())
	}
}

// RemovePort unplugs a port: the guest gets PORT_REMOVE, and whatever
// the port held is dropped (the one case, with reset, where data goes).
func (d *Device) RemovePort(id uint32) bool {
	var p *Port
	d.do(func() {
		if p = d.ports[id]; p == nil {
			return
		}
		if p.ready {
			d.sendControl(controlMsg{id: id, event: eventPortRemove, value: 1})
		}
		p.removed = true
		p.disconnect()
		p.resetGuestState()
		delete(d.ports, id)
	})
	if p == nil {
		return false
	}
	p.backend.Close()
	return true
}
