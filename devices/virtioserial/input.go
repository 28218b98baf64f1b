package virtioserial

// Host→guest: a port's backend read straight into the guest's RX
// buffers, only while the guest has buffers posted and the port open
// (so nothing read is ever dropped), and what a departing peer sent
// salvaged for the guest.

import (
	"errors"
	"io"
	"log/slog"
	"time"

	"vmm/chardev"
	"vmm/devices/virtio"
)

// salvage keeps what the departing peer sent that is still queued in
// the connection (the guest had no room for it yet): Conn.Salvage
// reads it into p.leftover, bounded by the kernel's buffer, and it
// reaches the guest before anything from the next peer. Caller holds mu.
func (p *Port) salvage() {
	p.leftover = p.conn.Salvage(p.leftover)
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
	if !p.connected || !p.readable || p.inputDone {
		return
	}
	done := false
	// A bounded amount per wakeup keeps one busy port from starving the
	// others on the loop; edge-triggered readiness stays set, so the
	// next kick or event continues.
	for i := 0; i < 4; i++ {
		more, pushed := p.readBatch(q)
		done = done || pushed
		if !more {
			break
		}
	}
	if done {
		p.d.pushed(q)
		p.rxPushedAt, p.rxPushed = time.Now(), true
	}
}

// readBatch reads the backend into up to maxBatch of the guest's RX
// buffers with one readv (the guest posts page-sized buffers: one
// system call per buffer was the cost). Buffers filled, whole or in
// part, are pushed in order; the first one the data did not reach stays
// held (rxHeld), the rest go back to the ring. It reports whether
// another call may move more, and whether it pushed any. Caller holds
// mu; the port is open, connected and readable.
func (p *Port) readBatch(q *virtio.Queue) (more, pushed bool) {
	batch := p.batch[:0]
	iovs := p.iovs[:0]
	room := 0
	if p.rxHeld != nil {
		batch = append(batch, p.rxHeld)
		iovs = append(iovs, p.rxHeld.Writable...)
		room += int(p.rxHeld.WritableLen)
		p.rxHeld = nil
	}
	// Pop only as many buffers as the pending bytes need (at least one,
	// to see EAGAIN or the end): a 1-byte message must not walk and give
	// back dozens of chains. Where the backend cannot say (FIONREAD
	// fails), up to maxBatch.
	pending, known := p.conn.Pending()
	for len(batch) < maxBatch && (!known || len(batch) == 0 || room < pending) {
		var c *virtio.Chain
		var err error
		if len(batch) == 0 {
			c, err = q.PopOrEnableNotification()
		} else {
			c, err = q.Pop()
		}
		if err != nil {
			logQueueError(p.label()+" rx", err)
			break
		}
		if c == nil {
			break
		}
		if c.WritableLen == 0 {
			// A buffer with no room (a confused or hostile driver):
			// give it back empty rather than read into nothing.
			if err := q.PushUsed(c, 0); err != nil {
				logQueueError(p.label()+" rx", err)
				break
			}
			pushed = true
			continue
		}
		if len(iovs)+len(c.Writable) > chardev.MaxIovecs {
			unpop(q, c, p.label()+" rx")
			break
		}
		batch = append(batch, c)
		iovs = append(iovs, c.Writable...)
		room += int(c.WritableLen)
	}
	defer func() {
		clear(batch)
		clear(iovs)
		p.batch, p.iovs = batch[:0], iovs[:0]
	}()
	if len(batch) == 0 {
		return false, pushed
	}
	n, err := p.conn.Readv(iovs)
	left := max(n, 0)
	i := 0
	for ; i < len(batch) && left > 0; i++ {
		c := batch[i]
		k := min(left, int(c.WritableLen))
		if err := q.PushUsed(c, uint32(k)); err != nil {
			logQueueError(p.label()+" rx", err)
		}
		left -= k
		p.bytesIn += uint64(k)
		pushed = true
	}
	if i < len(batch) {
		for j := len(batch) - 1; j > i; j-- {
			unpop(q, batch[j], p.label()+" rx")
		}
		p.rxHeld = batch[i] // keep a buffer for the next data
	}
	if n > 0 {
		// Read on until EAGAIN or the end: readiness is edge-triggered,
		// and a hang-up already reported will not be reported again.
		return true, pushed
	}
	switch {
	case errors.Is(err, chardev.ErrWouldBlock):
		p.readable = false
	case err == io.EOF:
		p.inputDone = true // a file's end: output goes on
	default:
		if err != chardev.ErrPeerGone {
			slog.Info("virtio-serial: host read failed", "port", p.label(), "err", err)
		}
		p.disconnect()
	}
	return false, pushed
}
