package chardev

import (
	"errors"
	"log/slog"
)

// Receiver is a guest device that takes host input into a bounded
// buffer (the UART's FIFO): the host reads its backend only as much as
// Room allows, so nothing read is ever dropped.
type Receiver interface {
	Room() int
	Receive(b []byte) int
	// OnSpace registers a function called when Room grows from zero.
	OnSpace(func())
}

// Input pumps a connection's input into a Receiver on the loop, with
// backpressure: it reads no more than the device has room for, and
// while the device is full it reads nothing, so the host writer waits
// in its own socket or pipe buffer. Readiness comes from the owner's
// Conn.Watch (one watch per connection serves reading and writing),
// edge-triggered: a peer that hangs up behind a full device is heard
// once, not on every turn of the loop. Its state is the loop
// goroutine's.
type Input struct {
	loop  *Loop
	conn  Conn
	dst   Receiver
	onEnd func(error)
	pumpF func()    // pump, made once: posted on every OnSpace
	buf   []byte    // one read's worth
	iov   [1][]byte // Readv's argument, without an allocation per read

	readable bool // no ErrWouldBlock since the last readiness
	ended    bool // the input ended or failed
	closed   bool
}

// NewInput starts feeding c's input into dst; the owner calls Readable
// on each Readable readiness of c. When the input ends or fails, after
// everything before it went to dst, onEnd (if set) runs on the loop
// with the reason (io.EOF, an ErrPeerGone, another error).
func NewInput(loop *Loop, c Conn, dst Receiver, onEnd func(error)) *Input {
	in := &Input{loop: loop, conn: c, dst: dst, onEnd: onEnd, buf: make([]byte, 4096), readable: true}
	in.pumpF = in.pump
	dst.OnSpace(func() { loop.Post(in.pumpF) })
	loop.Post(in.pumpF)
	return in
}

// Readable is the connection's Readable readiness. On the loop.
func (in *Input) Readable() {
	in.readable = true
	in.pump()
}

// Close stops reading for good, before the owner drops the connection.
// onEnd is not called. On the loop.
func (in *Input) Close() { in.closed = true }

// pump reads while the device has room and the connection has input.
func (in *Input) pump() {
	for in.readable && !in.ended && !in.closed {
		room := in.dst.Room()
		if room == 0 {
			return // OnSpace posts pump again
		}
		in.iov[0] = in.buf[:min(room, len(in.buf))]
		n, err := in.conn.Readv(in.iov[:])
		if n > 0 {
			in.dst.Receive(in.buf[:n]) // fits: at most room bytes were read
			continue
		}
		if errors.Is(err, ErrWouldBlock) {
			in.readable = false
			return
		}
		in.end(err)
	}
}

// end is the input's end: nothing more is read, and the owner hears.
func (in *Input) end(err error) {
	in.ended = true
	slog.Debug("input ended", "err", err)
	if in.onEnd != nil {
		in.loop.Post(func() { in.onEnd(err) })
	}
}
