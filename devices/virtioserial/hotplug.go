package virtioserial

// Ports added and removed while the guest runs (QMP device_add and
// device_del), and the guest-open notifications behind QMP's
// VSERPORT_CHANGE.

import (
	"fmt"

	"vmm/devices/virtio"
)

// AddPort plugs a port in while the device runs, with QEMU's checks and
// words. The guest learns of it through PORT_ADD (at once if its driver
// is up, else with the others at DEVICE_READY). The backend is not
// started here: the caller starts it, or hands it a connection, with the
// returned Port as its chardev.Sink.
func (d *Device) AddPort(pc PortConfig) (*Port, error) {
	var p *Port
	var err error
	d.do(func() {
		var nr int
		if nr, err = d.checkNewPort(pc); err != nil {
			return
		}
		p = newPort(d, uint32(nr), pc)
		d.ports[uint32(nr)] = p
		if d.driverReady {
			d.sendControl(controlMsg{id: p.id, event: eventPortAdd, value: 1})
		}
	})
	return p, err
}

// checkNewPort picks or checks the port number and the name, with
// QEMU's errors (hw/char/virtio-serial-bus.c). Caller holds mu.
func (d *Device) checkNewPort(pc PortConfig) (int, error) {
	if pc.Backend == nil {
		return 0, fmt.Errorf("virtio-serial-bus: no chardev")
	}
	if pc.Name != "" {
		for _, q := range d.ports {
			if q.name == pc.Name {
				return 0, fmt.Errorf("virtio-serial-bus: A port already exists by name %s", pc.Name)
			}
		}
	}
	nr := pc.Nr
	if nr < 0 {
		if nr = d.freeNr(pc.Console); nr < 0 {
			return 0, fmt.Errorf("virtio-serial-bus: Maximum port limit for this device reached")
		}
	}
	switch {
	case nr == 0 && !pc.Console:
		return 0, fmt.Errorf("Port number 0 on virtio-serial devices reserved for virtconsole devices for backward compatibility.")
	case d.ports[uint32(nr)] != nil:
		return 0, fmt.Errorf("virtio-serial-bus: A port already exists at id %d", nr)
	case nr >= d.maxPorts:
		return 0, fmt.Errorf("virtio-serial-bus: Out-of-range port id specified, max. allowed: %d", d.maxPorts-1)
	}
	return nr, nil
}

// UnplugPort removes a port while the guest runs: what the guest had
// queued for the host (in its TX queue, and any buffer half written) is
// discarded and counted, the guest gets PORT_REMOVE, and the port's
// final state is returned. Unlike RemovePort, the backend and its
// current connection are left as they are: the caller owns them (a
// chardev outlives the device plugged into it, as in QEMU). It reports
// false if there is no such port.
func (d *Device) UnplugPort(nr uint32) (PortStats, bool) {
	var st PortStats
	var ok bool
	d.do(func() {
		p := d.ports[nr]
		if p == nil {
			return
		}
		ok = true
		wasReady := p.ready
		if wasReady {
			p.discardTX()
		}
		p.resetGuestState()
		if wasReady {
			d.sendControl(controlMsg{id: nr, event: eventPortRemove, value: 1})
		}
		p.removed = true
		p.connWatch.Remove()
		p.connWatch = nil
		p.connected = false
		delete(d.ports, nr)
		st = p.statsLocked()
	})
	return st, ok
}

// discardTX consumes what the guest queued on the port's TX queue,
// counting it as dropped, so that its buffers come back to the guest as
// used before the port goes. Caller holds mu.
func (p *Port) discardTX() {
	q := p.d.queue(rxQueueIndex(p.id) + 1)
	if q == nil {
		return
	}
	if p.txHeld != nil {
		p.dropped += uint64(p.tx.Len())
		if err := q.PushUsed(p.txHeld, 0); err != nil {
			logQueueError(p.label()+" tx", err)
		}
		p.txHeld, p.tx = nil, virtio.Reader{}
	}
	pushed := false
	for {
		c, err := q.PopOrEnableNotification()
		if err != nil {
			logQueueError(p.label()+" tx", err)
			break
		}
		if c == nil {
			break
		}
		r := virtio.NewReader(c)
		p.dropped += uint64(r.Len())
		if err := q.PushUsed(c, 0); err != nil {
			logQueueError(p.label()+" tx", err)
			break
		}
		pushed = true
	}
	if pushed || p.throttled {
		p.d.pushed(q)
	}
	p.setThrottled(false)
}

// setGuestOpen records the guest opening or closing the port and tells
// Config.OnGuestOpen about each change of a port that has an id. Caller
// holds mu (the callback must not block or take a lock above it).
func (p *Port) setGuestOpen(open bool) {
	if p.guestOpen == open {
		return
	}
	p.guestOpen = open
	if p.devID != "" && p.d.onGuestOpen != nil {
		p.d.onGuestOpen(p.devID, open)
	}
}
