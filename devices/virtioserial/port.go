package virtioserial

import (
	"errors"
	"log/slog"

	"golang.org/x/sys/unix"

	"vmm/chardev"
	"vmm/devices/virtio"
)

// Port is one guest port coupled to one host backend. The fields after
// backend are guarded by the device's mu.
type Port struct {
	d       *Device
	id      uint32
	name    string
	console bool
	backend chardev.Backend

	dropDisconnected bool // disconnected=drop: discard output while no peer

	ready     bool // the guest sent PORT_READY(1)
	guestOpen bool // the guest has the port open
	removed   bool

	conn          chardev.Conn
	watches       []*chardev.Watch // conn's loop registrations
	connected     bool
	disconnecting bool
	// Readiness of the connection's fds, from edge-triggered epoll: set
	// by events, cleared by EAGAIN. Unpollable fds (regular files) stay
	// ready.
	readable, writable bool
	inputDone          bool // input ended where that is not a disconnect (a file)
	outputDead         bool // output failed where the peer cannot come back (stdout)

	txHeld *virtio.Chain // guest→host chain not yet fully written
	tx     virtio.Reader // position in txHeld
	rxHeld *virtio.Chain // popped host→guest chain the backend had no data for
	// leftover is what a departed peer had sent that the guest had no
	// room for when it left; it goes to the guest first.
	leftover []byte

	throttled   bool
	consoleBuf  *chardev.DropRing // console output the host could not take yet
	bytesIn     uint64            // host→guest
	bytesOut    uint64            // guest→host
	dropped     uint64
	throttles   uint64
	connections uint64
}

func newPort(d *Device, id uint32, pc PortConfig) *Port {
	p := &Port{d: d, id: id, name: pc.Name, console: pc.Console, backend: pc.Backend,
		dropDisconnected: pc.DropDisconnected}
	if pc.Console {
		size := pc.Limit
		if size <= 0 {
			size = consoleRingSize
		}
		p.consoleBuf = chardev.NewDropRing(size)
	}
	return p
}

// Connected implements chardev.Sink: a host peer arrived. Held guest
// data goes to it first.
func (p *Port) Connected(c chardev.Conn) {
	p.d.locked(func() {
		if p.removed {
			p.backend.Drop(c)
			return
		}
		p.conn, p.connected = c, true
		p.readable, p.writable = true, true
		p.inputDone, p.outputDead = false, false
		p.connections++
		if err := p.watch(); err != nil {
			slog.Warn("virtio-serial: cannot watch the host connection", "port", p.label(), "err", err)
		}
		if p.ready {
			p.d.sendControl(controlMsg{id: p.id, event: eventPortOpen, value: 1})
		}
		slog.Info("virtio-serial: host connected", "port", p.label())
		p.pump()
	})
}

// Disconnected implements chardev.Sink.
func (p *Port) Disconnected() { p.d.locked(p.disconnect) }

// watch registers the connection's fds, edge-triggered, for its
// lifetime: one registration per connection, so a reconnect can never
// inherit a stale watch. Caller holds mu.
func (p *Port) watch() error {
	c := p.conn
	add := func(fd int, ev uint32) error {
		w, err := p.d.loop.Add(fd, ev|unix.EPOLLET, func(got uint32) { p.event(fd, got) })
		if errors.Is(err, chardev.ErrNotPollable) {
			return nil // always ready
		}
		if err == nil {
			p.watches = append(p.watches, w)
		}
		return err
	}
	if c.R >= 0 {
		ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
		if c.W == c.R {
			ev |= unix.EPOLLOUT
		}
		if err := add(c.R, ev); err != nil {
			return err
		}
	}
	if c.W >= 0 && c.W != c.R {
		return add(c.W, unix.EPOLLOUT)
	}
	return nil
}

// event records readiness of one of the connection's fds.
func (p *Port) event(fd int, ev uint32) {
	p.d.locked(func() {
		if !p.connected || (fd != p.conn.R && fd != p.conn.W) {
			return // a previous connection's fd
		}
		if fd == p.conn.R && ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			// A hang-up is read to its end first: what the peer sent
			// before leaving still reaches the guest.
			p.readable = true
		}
		if fd == p.conn.W && ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			p.writable = true
		}
		p.pump()
	})
}

// disconnect ends the current connection: the guest sees PORT_OPEN(0),
// held data stays for the next peer. Caller holds mu.
func (p *Port) disconnect() {
	if !p.connected || p.disconnecting {
		return
	}
	c := p.conn
	// What the peer sent before leaving is the guest's: what it has room
	// for goes in now, the rest is salvaged. (fillRX may find EOF and
	// come back here; disconnecting stops that.)
	p.disconnecting = true
	p.fillRX()
	p.salvage()
	p.disconnecting = false
	for _, w := range p.watches {
		w.Remove()
	}
	p.watches = nil
	p.connected = false
	p.conn = chardev.Conn{R: -1, W: -1}
	p.backend.Drop(c)
	if p.ready {
		p.d.sendControl(controlMsg{id: p.id, event: eventPortOpen, value: 0})
	}
	slog.Info("virtio-serial: host disconnected", "port", p.label(), "held", p.heldBytes())
}

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

// resetGuestState forgets what the guest had: on device reset or unplug
// (the only times guest data is dropped). Caller holds mu.
func (p *Port) resetGuestState() {
	p.ready, p.guestOpen = false, false
	if p.txHeld != nil {
		p.dropped += uint64(p.tx.Len())
	}
	p.txHeld, p.tx, p.rxHeld = nil, virtio.Reader{}, nil
	p.dropped += uint64(len(p.leftover))
	p.leftover = nil
	p.throttled = false
}

// pump moves whatever can move now, both ways. Caller holds mu.
func (p *Port) pump() {
	if !p.d.active || !p.ready {
		return
	}
	p.flushTX()
	p.fillRX()
}

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
		if !p.writeHeld() {
			if !p.throttled {
				p.throttled = true
				p.throttles++
				q.DisableNotifications() // no kicks while we cannot write
			}
			break
		}
		p.throttled = false
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
	case p.conn.Ring != nil:
		for _, b := range p.tx.Iovecs() {
			p.conn.Ring.Write(b)
		}
		p.bytesOut += uint64(left)
		return true
	case !p.connected && p.dropDisconnected:
		// disconnected=drop: a serial line with nobody listening.
		p.dropped += uint64(left)
		return true
	case p.conn.Discard || p.outputDead:
		p.bytesOut += uint64(left)
		if p.outputDead {
			p.dropped += uint64(left)
		}
		return true
	case !p.connected || p.conn.W < 0 || !p.writable:
		return false
	}
	for p.tx.Len() > 0 {
		n, err := writev(p.conn.W, p.tx.Iovecs())
		if n > 0 {
			p.tx.Advance(n)
			p.bytesOut += uint64(n)
			continue
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			p.writable = false
			return false
		}
		p.writeFailed(err)
		return p.outputDead
	}
	return true
}

// writeFailed handles EPIPE, ECONNRESET and friends. Caller holds mu.
func (p *Port) writeFailed(err error) {
	if p.conn.EOFIsDisconnect {
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
	if p.conn.Discard {
		return
	}
	if p.conn.Ring != nil {
		for _, b := range bufs {
			p.conn.Ring.Write(b)
		}
		return
	}
	r := p.consoleBuf
	p.flushConsole()
	if r.Len() == 0 && p.connected && p.writable && p.conn.W >= 0 && !p.outputDead {
		n, err := writev(p.conn.W, bufs)
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			p.writeFailed(err)
		} else if err != nil {
			p.writable = false
		}
		bufs = skip(bufs, max(n, 0))
	}
	if !p.connected && !p.conn.Discard {
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
	for r.Len() > 0 && p.connected && p.writable && p.conn.W >= 0 && !p.outputDead {
		n, err := writev(p.conn.W, r.Chunks())
		if n > 0 {
			r.Consume(n)
			continue
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
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

func (p *Port) heldBytes() uint64 {
	if p.txHeld == nil {
		return 0
	}
	return uint64(p.tx.Len())
}

func (p *Port) label() string {
	if p.name != "" {
		return p.name
	}
	return p.backend.ID()
}

// writev writes nothing for an empty chain rather than calling the
// kernel; readv's callers never pass an empty one (a zero-length read
// would look like EOF).
func writev(fd int, bufs [][]byte) (int, error) {
	if totalLen(bufs) == 0 {
		return 0, nil
	}
	return unix.Writev(fd, bufs)
}

func readv(fd int, bufs [][]byte) (int, error) {
	return unix.Readv(fd, bufs)
}

func totalLen(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
