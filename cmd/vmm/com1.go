package main

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"vmm/chardev"
)

// com1Host couples COM1 to the chardev behind -serial, the same backends
// -chardev makes: the guest's output goes through a ring that never
// blocks a vCPU to the backend's current connection (and is dropped
// while nobody is connected, like a serial line with no terminal); the
// connection's input feeds the UART's FIFO through a chardev.Input.
type com1Host struct {
	backend chardev.Backend
	loop    *chardev.Loop
	rx      chardev.Receiver // the UART, set before Start
	// writable wakes Write waiting for the connection to take more.
	writable chan struct{}

	// mu is held around each write to the connection, so a drop (which
	// closes it) never races a write.
	mu sync.Mutex
	// The fields below are guarded by mu.
	conn  chardev.Conn // nil while disconnected
	gen   uint64       // counts connections
	watch *chardev.ConnWatch
	input *chardev.Input // conn's input into the UART
	iov   [1][]byte      // Writev's argument

	// giveUpAt, once set (at exit), bounds how long Write waits for a
	// peer that does not read: it must not keep a stopped VM alive.
	giveUpAt atomic.Int64 // unix nanoseconds; 0: wait as long as it takes
}

func newCOM1Host(b chardev.Backend, loop *chardev.Loop) *com1Host {
	return &com1Host{backend: b, loop: loop, writable: make(chan struct{}, 1)}
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
		c, gen := h.conn, h.gen
		if c == nil {
			h.mu.Unlock()
			return n, nil
		}
		h.iov[0] = p
		k, err := c.Writev(h.iov[:])
		h.iov[0] = nil
		h.mu.Unlock()
		switch {
		case errors.Is(err, chardev.ErrWouldBlock):
			if t := h.giveUpAt.Load(); t != 0 && time.Now().UnixNano() > t {
				slog.Warn("serial output its peer did not take before exit", "chardev", h.backend.ID(), "bytes", len(p))
				return n, nil
			}
			select { // bounded: the connection may go meanwhile
			case <-h.writable:
			case <-time.After(100 * time.Millisecond):
			}
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

// Connected is the backend's new connection (on the loop goroutine,
// like lost, so the two never interleave).
// The input ends only after everything the peer sent before it left
// has gone to the guest (Input reads no further than the FIFO's room);
// then a server can take its next client.
func (h *com1Host) Connected(c chardev.Conn) {
	h.mu.Lock()
	h.gen++
	gen := h.gen
	h.mu.Unlock()
	in := chardev.NewInput(h.loop, c, h.rx, func(err error) {
		if errors.Is(err, chardev.ErrPeerGone) {
			h.lost(gen)
		}
	})
	w, err := c.Watch(h.loop, func(r chardev.Ready) {
		if r&chardev.Readable != 0 {
			in.Readable()
		}
		if r&chardev.Writable != 0 {
			select {
			case h.writable <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		slog.Warn("serial connection not watched", "chardev", h.backend.ID(), "err", err)
	}
	h.mu.Lock()
	h.conn, h.input, h.watch = c, in, w
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
	if h.conn == nil || h.gen != gen {
		return
	}
	c := h.conn
	h.conn = nil
	h.watch.Remove() // before Drop closes its fds
	h.watch = nil
	h.input.Close()
	h.input = nil
	h.backend.Drop(c)
}
