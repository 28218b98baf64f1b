package main

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"vmm/chardev"
)

// com1Host couples COM1 to the chardev behind -serial, the same backends
// -chardev makes: the guest's output goes through a ring that never
// blocks a vCPU to the backend's current connection (and is dropped
// while nobody is connected, like a serial line with no terminal); the
// connection's input feeds the UART's FIFO through chardev.AttachInput.
type com1Host struct {
	backend chardev.Backend
	loop    *chardev.Loop
	rx      chardev.Receiver // the UART, set before Start

	// mu is held around each write to the connection's fd, so a drop
	// (which closes it) never races a write.
	mu sync.Mutex
	// The fields below are guarded by mu.
	conn      chardev.Conn
	gen       uint64 // counts connections: a new one may reuse the old fd numbers
	connected bool
	input     *chardev.Input // conn.R into the UART; nil without one

	// giveUpAt, once set (at exit), bounds how long Write waits for a
	// peer that does not read: it must not keep a stopped VM alive.
	giveUpAt atomic.Int64 // unix nanoseconds; 0: wait as long as it takes
}

// giveUpAfter makes writes that cannot finish by t drop what is left.
func (h *com1Host) giveUpAfter(t time.Time) { h.giveUpAt.Store(t.UnixNano()) }

// Write is the output ring's flusher writing to the host; it may block
// (only the flusher waits), and never fails, so the ring keeps flushing
// across reconnects.
func (h *com1Host) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		h.mu.Lock()
		c, gen, ok := h.conn, h.gen, h.connected
		if !ok || c.Discard || c.W < 0 {
			h.mu.Unlock()
			return n, nil
		}
		if c.Ring != nil {
			c.Ring.Write(p)
			h.mu.Unlock()
			return n, nil
		}
		k, err := unix.Write(c.W, p)
		h.mu.Unlock()
		switch {
		case errors.Is(err, unix.EAGAIN):
			if t := h.giveUpAt.Load(); t != 0 && time.Now().UnixNano() > t {
				slog.Warn("serial output its peer did not take before exit", "chardev", h.backend.ID(), "bytes", len(p))
				return n, nil
			}
			fds := []unix.PollFd{{Fd: int32(c.W), Events: unix.POLLOUT}}
			unix.Poll(fds, 100) // bounded: the connection may go meanwhile
		case errors.Is(err, unix.EINTR):
		case err != nil:
			slog.Debug("serial output: peer gone", "chardev", h.backend.ID(), "err", err)
			h.loop.Post(func() { h.lost(gen) })
			return n, nil
		default:
			p = p[k:]
		}
	}
	return n, nil
}

// Connected is the backend's new connection (on the loop goroutine).
func (h *com1Host) Connected(c chardev.Conn) {
	h.mu.Lock()
	h.gen++
	gen := h.gen
	h.conn, h.connected, h.input = c, true, nil
	h.mu.Unlock()
	if c.R < 0 {
		return
	}
	// The input ends only after everything the peer sent before it
	// left has gone to the guest (chardev.Input reads no further than the
	// FIFO's room); then a server can take its next client.
	var onEnd func()
	if c.EOFIsDisconnect {
		onEnd = func() { h.lost(gen) }
	}
	in, err := chardev.AttachInput(h.loop, c.R, h.rx, onEnd)
	if err != nil {
		slog.Warn("serial input not attached", "chardev", h.backend.ID(), "err", err)
		return
	}
	h.mu.Lock()
	if h.gen == gen {
		h.input = in
	}
	h.mu.Unlock()
}

// Disconnected is the backend seeing its peer leave (a pty's).
func (h *com1Host) Disconnected() {
	h.mu.Lock()
	gen := h.gen
	h.mu.Unlock()
	h.lost(gen)
}

// lost ends connection number gen, if it is still the current one.
func (h *com1Host) lost(gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.connected || h.gen != gen {
		return
	}
	c := h.conn
	h.connected = false
	if h.input != nil {
		h.input.Close() // before Drop closes its fd
		h.input = nil
	}
	h.backend.Drop(c)
}
