package virtioserial

// Port state and its host connection: what the guest and the host side
// have set up, the backend's connection events and readiness, and the
// disconnect that keeps held data for the next peer. The data paths are
// output.go (guest→host) and input.go (host→guest).

import (
	"log/slog"
	"time"

	"vmm/chardev"
	"vmm/devices/virtio"
)

// Port is one guest port coupled to one host backend. The fields after
// backend are guarded by the device's mu and written on the event loop only.
type Port struct {
	d       *Device
	id      uint32
	name    string
	console bool
	backend chardev.Backend

	dropDisconnected bool   // disconnected=drop: discard output while no peer
	devID            string // -device id=, for guest-open events

	ready     bool // the guest sent PORT_READY(1)
	guestOpen bool // the guest has the port open
	removed   bool

	conn          chardev.Conn       // nil while disconnected
	connWatch     *chardev.ConnWatch // conn's loop registration
	connected     bool
	disconnecting bool
	// Readiness of the connection, edge-triggered: set by its watch,
	// cleared by ErrWouldBlock. What never blocks (a regular file, a
	// ring) stays ready.
	readable, writable bool
	inputDone          bool // input ended where that is not a disconnect (a file)
	outputDead         bool // output failed where the peer cannot come back (stdout)

	txHeld *virtio.Chain // guest→host chain not yet fully written
	tx     virtio.Reader // position in txHeld
	rxHeld *virtio.Chain // popped host→guest chain the backend had no data for
	// Scratch for one writev or readv over several chains (empty
	// between calls: chains popped ahead are pushed or given back).
	batch []*virtio.Chain
	iovs  [][]byte
	// leftover is what a departed peer had sent that the guest had no
	// room for when it left; it goes to the guest first.
	leftover []byte

	// Reply polling (replypoll.go): the last input pushed to the guest,
	// whether this event pushed some, and whether the guest answers
	// fast enough to watch for it.
	rxPushedAt time.Time
	rxPushed   bool
	replyPoll  bool

	throttled   bool
	throttledAt time.Time         // when throttled last became true
	throttledT  time.Duration     // time spent throttled before throttledAt
	consoleBuf  *chardev.DropRing // console output the host could not take yet
	bytesIn     uint64            // host→guest
	bytesOut    uint64            // guest→host
	dropped     uint64
	throttles   uint64
	connections uint64
}

func newPort(d *Device, id uint32, pc PortConfig) *Port {
	p := &Port{d: d, id: id, name: pc.Name, console: pc.Console, backend: pc.Backend,
		dropDisconnected: pc.DropDisconnected, devID: pc.ID}
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
	p.d.do(func() {
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
func (p *Port) Disconnected() { p.d.do(p.disconnect) }

// watch registers the connection's readiness for its lifetime: one
// registration per connection, so a reconnect can never inherit a
// stale watch. Caller holds mu.
func (p *Port) watch() error {
	c := p.conn
	w, err := c.Watch(p.d.loop, func(r chardev.Ready) { p.event(c, r) })
	p.connWatch = w
	return err
}

// event records readiness of connection c. A hang-up is read to its
// end first: what the peer sent before leaving still reaches the guest.
func (p *Port) event(c chardev.Conn, r chardev.Ready) {
	p.d.locked(func() {
		if !p.connected || p.conn != c {
			return // a previous connection's
		}
		if r&chardev.Readable != 0 {
			p.readable = true
		}
		if r&chardev.Writable != 0 {
			p.writable = true
			p.d.wakeDrain()
		}
		p.pump()
	})
	p.d.pollReply(p)
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
	p.connWatch.Remove()
	p.connWatch = nil
	p.connected = false
	p.conn = nil
	p.backend.Drop(c)
	if p.ready {
		p.d.sendControl(controlMsg{id: p.id, event: eventPortOpen, value: 0})
	}
	slog.Info("virtio-serial: host disconnected", "port", p.label(), "held", p.heldBytes())
}

// resetGuestState forgets what the guest had: on device reset or unplug
// (the only times guest data is dropped). Caller holds mu.
func (p *Port) resetGuestState() {
	p.ready = false
	p.setGuestOpen(false)
	if p.txHeld != nil {
		p.dropped += uint64(p.tx.Len())
	}
	p.txHeld, p.tx, p.rxHeld = nil, virtio.Reader{}, nil
	p.dropped += uint64(len(p.leftover))
	p.leftover = nil
	p.setThrottled(false)
}

// pump moves whatever can move now, both ways. Caller holds mu.
func (p *Port) pump() {
	if !p.d.active || !p.ready {
		return
	}
	p.flushTX()
	p.fillRX()
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
