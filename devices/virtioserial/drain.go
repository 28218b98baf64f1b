package virtioserial

import "time"

// Drain writes out, at the end of the VM's life, what the guest handed
// the device before it stopped (DESIGN.md): every port's TX buffers in
// the avail ring, kicked or not (a kick absorbed by an ioeventfd may not
// have reached the event loop yet), and console output waiting in the
// host-side ring. A backend that cannot take it all now is waited for
// until deadline, no longer: a peer that is not reading must not keep a
// powered-off VM alive. Drain returns how many bytes were left behind.
//
// Call it once the vCPUs have stopped, while guest memory is still
// mapped, with the event loop running: a port waiting for its peer
// hears through its connection's watch, which wakes Drain. Afterwards
// the device is inactive: neither the event loop nor a late backend
// event touches guest memory again.
func (d *Device) Drain(deadline time.Time) (left uint64) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		waiting := false
		d.do(func() {
			left = 0
			if !d.active {
				return
			}
			for _, p := range d.sortedPortsLocked() {
				p.drainOut()
				n := p.unwritten()
				left += n
				waiting = waiting || (n > 0 && p.connected && !p.writable && !p.outputDead)
			}
		})
		if left == 0 || !waiting || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-d.drainWake:
		case <-timer.C:
		}
	}
	d.do(func() {
		// What is left is dropped (and counted), as on a reset.
		d.deactivate()
		for q := range d.signal {
			delete(d.signal, q)
		}
		for _, p := range d.ports {
			p.resetGuestState()
		}
	})
	return left
}

// wakeDrain tells a waiting Drain that a port may write again. Caller
// holds mu.
func (d *Device) wakeDrain() {
	select {
	case d.drainWake <- struct{}{}:
	default:
	}
}

// drainOut writes what the port can: its TX queue and its console
// ring. Caller holds mu.
func (p *Port) drainOut() {
	if p.ready {
		p.flushTX()
	}
	if p.console && p.consoleBuf.Len() > 0 {
		p.flushConsole()
	}
}

// unwritten counts the guest's output the port still holds: the rest of
// its TX chain and, while a peer could take it, its console ring.
// Buffers still in the avail ring behind a held chain are not counted.
// Caller holds mu.
func (p *Port) unwritten() uint64 {
	n := p.heldBytes()
	if p.console && p.connected && !p.outputDead {
		n += uint64(p.consoleBuf.Len())
	}
	return n
}
