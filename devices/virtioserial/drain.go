package virtioserial

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// Drain writes out, at the end of the VM's life, what the guest handed
// the device before it stopped (DESIGN.md): every port's TX buffers in
// the avail ring, kicked or not (a kick absorbed by an ioeventfd may not
// have reached the event loop yet), and console output waiting in the
// host-side ring. A backend that cannot take it all now is waited for
// until deadline, no longer: a peer that is not reading must not keep a
// powered-off VM alive. Drain returns how many bytes were left behind.
//
// Call it once the vCPUs have stopped, while guest memory is still
// mapped. Afterwards the device is inactive: neither the event loop nor
// a late backend event touches guest memory again.
func (d *Device) Drain(deadline time.Time) (left uint64) {
	for {
		var waitFDs []unix.PollFd
		d.locked(func() {
			left = 0
			if !d.active {
				return
			}
			for _, p := range d.sortedPortsLocked() {
				p.drainOut()
				n := p.unwritten()
				left += n
				if n > 0 && p.connected && !p.writable && p.conn.W >= 0 && !p.outputDead {
					waitFDs = append(waitFDs, unix.PollFd{Fd: int32(p.conn.W), Events: unix.POLLOUT})
				}
			}
		})
		wait := time.Until(deadline)
		if left == 0 || len(waitFDs) == 0 || wait <= 0 {
			break
		}
		if _, err := unix.Poll(waitFDs, int(wait.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			break
		}
		d.locked(func() {
			for _, pfd := range waitFDs {
				if pfd.Revents == 0 {
					continue
				}
				for _, p := range d.ports {
					if p.connected && p.conn.W == int(pfd.Fd) {
						p.writable = true
					}
				}
			}
		})
	}
	d.locked(func() {
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
