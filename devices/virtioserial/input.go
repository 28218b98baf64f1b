package virtioserial

// Host→guest: a port's backend read straight into the guest's RX
// buffers, only while the guest has buffers posted and the port open
// (so nothing read is ever dropped), and what a departing peer sent
// salvaged for the guest.

import (
	"errors"
	"log/slog"

	"golang.org/x/sys/unix"

	"vmm/devices/virtio"
)

// salvage keeps what the departing peer sent that is still queued in
// the connection (the guest had no room for it yet): it is read into
// p.leftover, which is bounded by the kernel's socket buffer, and
// reaches the guest before anything from the next peer. Caller holds mu.
func (p *Port) salvage() {
	c := p.conn
	if !c.EOFIsDisconnect || c.R < 0 {
		return
	}
	pending, err := unix.IoctlGetInt(c.R, unix.SIOCINQ)
	if err != nil || pending <= 0 {
		return
	}
	buf := make([]byte, pending)
	n := 0
	for n < len(buf) {
		k, err := unix.Read(c.R, buf[n:])
		if k <= 0 || err != nil {
			break
		}
		n += k
	}
	p.leftover = append(p.leftover, buf[:n]...)
}

// deliverLeftover copies salvaged bytes into the guest's RX buffers.
// It reports whether all of it went. Caller holds mu.
func (p *Port) deliverLeftover(q *virtio.Queue) (all, pushed bool) {
	for len(p.leftover) > 0 {
		c := p.rxHeld
		p.rxHeld = nil
		if c == nil {
			var err error
			if c, err = q.PopOrEnableNotification(); err != nil || c == nil {
				return false, pushed
			}
		}
		w := virtio.NewWriter(c)
		n, _ := w.Write(p.leftover) // short when the buffer is full
		if err := q.PushUsed(c, uint32(n)); err != nil {
			logQueueError(p.label()+" rx", err)
			return false, pushed
		}
		p.leftover = p.leftover[n:]
		p.bytesIn += uint64(n)
		pushed = true
	}
	p.leftover = nil
	return true, pushed
}

// fillRX reads the backend straight into the guest's RX buffers — only
// while the guest has buffers posted and the port open, so nothing read
// is ever dropped and a full guest throttles the host writer through
// its own socket or pipe buffer. Caller holds mu.
func (p *Port) fillRX() {
	if p.console && p.consoleBuf.Len() > 0 {
		p.flushConsole()
	}
	if !p.guestOpen {
		return
	}
	q := p.d.queue(rxQueueIndex(p.id))
	if q == nil {
		return
	}
	if len(p.leftover) > 0 {
		all, pushed := p.deliverLeftover(q)
		if pushed {
			p.d.pushed(q)
		}
		if !all {
			return // the next peer's data waits behind the last one's
		}
	}
	if !p.connected || p.conn.R < 0 || !p.readable || p.inputDone {
		return
	}
	done := false
	// A bounded batch per wakeup keeps one busy port from starving the
	// others on the loop; edge-triggered readiness stays set, so the
	// next kick or event continues.
	for i := 0; i < 64; i++ {
		c := p.rxHeld
		if c == nil {
			var err error
			if c, err = q.PopOrEnableNotification(); err != nil {
				logQueueError(p.label()+" rx", err)
				break
			}
			if c == nil {
				break
			}
		}
		p.rxHeld = nil
		if c.WritableLen == 0 {
			// A buffer with no room (a confused or hostile driver):
			// give it back empty rather than read into nothing.
			if err := q.PushUsed(c, 0); err != nil {
				logQueueError(p.label()+" rx", err)
				break
			}
			done = true
			continue
		}
		w := virtio.NewWriter(c)
		n, err := readv(p.conn.R, w.Iovecs())
		if n > 0 {
			if err := q.PushUsed(c, uint32(n)); err != nil {
				logQueueError(p.label()+" rx", err)
				break
			}
			p.bytesIn += uint64(n)
			done = true
			continue
		}
		p.rxHeld = c // keep the buffer for the next data
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			p.readable = false
			break
		}
		if err != nil {
			slog.Info("virtio-serial: host read failed", "port", p.label(), "err", err)
		}
		if p.conn.EOFIsDisconnect || err != nil {
			p.disconnect()
		} else {
			p.inputDone = true
		}
		break
	}
	if done {
		p.d.pushed(q)
	}
}

func readv(fd int, bufs [][]byte) (int, error) {
	return unix.Readv(fd, bufs)
}
