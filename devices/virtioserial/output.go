package virtioserial

// Guest→host: a port's TX queue written to its backend straight from
// guest memory, the chain and its offset held while the host is not
// taking more (the guest's writers then block; no other port waits), and
// the console path that never holds the guest: a bounded drop-oldest
// ring instead.

import (
	"errors"
	"log/slog"

	"vmm/chardev"
	"vmm/devices/virtio"
)

// flushTX writes the guest's TX buffers to the host until the queue is
// empty or the host stops taking data; then the chain and its offset
// are held and the port stops popping (its guest writers block) — no
// other port is affected. Caller holds mu.
func (p *Port) flushTX() {
	q := p.d.queue(rxQueueIndex(p.id) + 1)
	if q == nil {
		return
	}
	done := false
	for {
		if p.txHeld == nil {
			c, err := q.PopOrEnableNotification()
			if err != nil {
				logQueueError(p.label()+" tx", err)
				break
			}
			if c == nil {
				break
			}
			p.txHeld, p.tx = c, virtio.NewReader(c)
		}
		if p.batchable() {
			if p.writeBatch(q) {
				done = true
				p.setThrottled(false)
			}
			continue // until the queue is empty or the host is full
		}
		if !p.writeHeld() {
			if !p.throttled {
				p.setThrottled(true)
				q.DisableNotifications() // no kicks while we cannot write
			}
			break
		}
		p.setThrottled(false)
		if err := q.PushUsed(p.txHeld, 0); err != nil {
			logQueueError(p.label()+" tx", err)
			p.txHeld = nil
			break
		}
		p.txHeld, p.tx = nil, virtio.Reader{}
		done = true
	}
	if done {
		p.d.pushed(q)
	}
}

// maxBatch bounds the chains one writev or readv carries (the test
// guest and Linux keep up to a few hundred buffers posted).
const maxBatch = 64

// batchable reports whether the port's output goes to a connection
// that may take it now, written with writeBatch; the other cases
// (consoles, no peer, a full peer, dead output) are writeHeld's. Caller
// holds mu.
func (p *Port) batchable() bool {
	return !p.console && !p.outputDead && p.connected && p.writable
}

// writeBatch writes the rest of txHeld and the chains queued behind it
// with one writev (one system call for up to maxBatch guest writes
// instead of one each). Chains written whole are pushed; one written in
// part becomes txHeld, its offset kept; those the host did not reach
// go back to the ring (Unpop) — so between calls the port holds at most
// one chain, as before. It reports whether it pushed any. On EAGAIN the
// port is no longer writable; on a failure writeFailed decides. Caller
// holds mu; p.batchable().
func (p *Port) writeBatch(q *virtio.Queue) (pushed bool) {
	batch := append(p.batch[:0], p.txHeld)
	iovs := append(p.iovs[:0], p.tx.Iovecs()...)
	for len(batch) < maxBatch {
		c, err := q.Pop()
		if err != nil {
			logQueueError(p.label()+" tx", err)
			break
		}
		if c == nil {
			break
		}
		if len(iovs)+len(c.Readable) > chardev.MaxIovecs {
			unpop(q, c, p.label()+" tx")
			break
		}
		batch = append(batch, c)
		iovs = append(iovs, c.Readable...)
	}
	n, err := p.conn.Writev(iovs)
	clear(iovs) // no stale references to guest memory
	p.iovs = iovs[:0]
	left := max(n, 0)
	p.bytesOut += uint64(left)
	i := 0
	for ; i < len(batch); i++ {
		c := batch[i]
		if i > 0 {
			if left == 0 && c.ReadableLen > 0 {
				break // not reached
			}
			p.txHeld, p.tx = c, virtio.NewReader(c)
		}
		k := min(left, p.tx.Len())
		p.tx.Advance(k)
		left -= k
		if p.tx.Len() > 0 {
			i++ // written in part: held
			break
		}
		if err := q.PushUsed(c, 0); err != nil {
			logQueueError(p.label()+" tx", err)
		}
		p.txHeld, p.tx = nil, virtio.Reader{}
		pushed = true
	}
	for j := len(batch) - 1; j >= i; j-- {
		unpop(q, batch[j], p.label()+" tx")
	}
	clear(batch)
	p.batch = batch[:0]
	if n <= 0 && !pushed {
		if err == nil || errors.Is(err, chardev.ErrWouldBlock) {
			p.writable = false
		} else {
			p.writeFailed(err)
		}
	}
	return pushed
}

// unpop gives a chain popped ahead back to its ring.
func unpop(q *virtio.Queue, c *virtio.Chain, where string) {
	if err := q.Unpop(c); err != nil {
		logQueueError(where, err)
	}
}

// writeHeld writes the rest of txHeld; true when all of it is gone.
// Caller holds mu.
func (p *Port) writeHeld() bool {
	left := p.tx.Len()
	switch {
	case p.console:
		// Consoles are never held behind their backend.
		p.writeConsole(p.tx.Iovecs())
		p.bytesOut += uint64(left)
		return true
	case !p.connected && p.dropDisconnected:
		// disconnected=drop: a serial line with nobody listening.
		p.dropped += uint64(left)
		return true
	case p.outputDead:
		p.bytesOut += uint64(left)
		p.dropped += uint64(left)
		return true
	case !p.connected || !p.writable:
		return false
	}
	for p.tx.Len() > 0 {
		n, err := p.conn.Writev(p.tx.Iovecs())
		if n > 0 {
			p.tx.Advance(n)
			p.bytesOut += uint64(n)
			continue
		}
		if err == nil || errors.Is(err, chardev.ErrWouldBlock) {
			p.writable = false
			return false
		}
		p.writeFailed(err)
		return p.outputDead
	}
	return true
}

// writeFailed handles a peer that left (the next one gets what is
// held) and output that failed for good. Caller holds mu.
func (p *Port) writeFailed(err error) {
	if errors.Is(err, chardev.ErrPeerGone) {
		slog.Info("virtio-serial: host write failed; peer gone", "port", p.label(), "err", err)
		p.disconnect()
		return
	}
	slog.Warn("virtio-serial: host output failed; discarding this port's output", "port", p.label(), "err", err)
	p.outputDead = true
}

// writeConsole sends console output without ever blocking: what the
// host cannot take now waits in a bounded drop-oldest ring. Caller
// holds mu.
func (p *Port) writeConsole(bufs [][]byte) {
	r := p.consoleBuf
	p.flushConsole()
	if r.Len() == 0 && p.connected && p.writable && !p.outputDead {
		n, err := p.conn.Writev(bufs)
		if errors.Is(err, chardev.ErrWouldBlock) {
			p.writable = false
		} else if err != nil {
			p.writeFailed(err)
		}
		bufs = skip(bufs, max(n, 0))
	}
	if !p.connected {
		// QEMU discards console output with no host; so do we, counted.
		for _, b := range bufs {
			p.dropped += uint64(len(b))
		}
		return
	}
	for _, b := range bufs {
		r.Write(b)
	}
}

// skip drops the first n bytes of bufs (what a short writev took).
func skip(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 && n > 0 {
		bufs = append([][]byte{bufs[0][n:]}, bufs[1:]...)
	}
	return bufs
}

// flushConsole writes out what the console ring holds. Caller holds mu.
func (p *Port) flushConsole() {
	r := p.consoleBuf
	for r.Len() > 0 && p.connected && p.writable && !p.outputDead {
		n, err := p.conn.Writev(r.Chunks())
		if n > 0 {
			r.Consume(n)
			continue
		}
		if errors.Is(err, chardev.ErrWouldBlock) {
			p.writable = false
			return
		}
		p.writeFailed(err)
		return
	}
}

// emergencyWrite is VIRTIO_CONSOLE_F_EMERG_WRITE: one byte, now.
// Caller holds mu.
func (p *Port) emergencyWrite(b byte) {
	if p.consoleBuf == nil {
		p.consoleBuf = chardev.NewDropRing(consoleRingSize)
	}
	p.writeConsole([][]byte{{b}})
	p.bytesOut++
}
