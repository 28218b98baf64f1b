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
	hup       *chardev.Watch // hang-up watch on a dup of conn.R
	hupFD     int
	checking  bool // a hang-up is being settled (checkHungUp)

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
	h.conn, h.connected, h.checking = c, true, false
	h.mu.Unlock()
	if c.R < 0 {
		return
	}
	if _, err := chardev.AttachInput(h.loop, c.R, h.rx, nil); err != nil {
		slog.Warn("serial input not attached", "chardev", h.backend.ID(), "err", err)
		return
	}
	if !c.EOFIsDisconnect {
		return
	}
	// chardev.Input stops at end of input without telling anyone; a
	// second look at the same file (a dup) sees the peer hang up, so the
	// backend can take the next one.
	fd, err := unix.FcntlInt(uintptr(c.R), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return
	}
	w, err := h.loop.Add(fd, unix.EPOLLRDHUP, func(uint32) { h.hungUp(gen) })
	if err != nil {
		unix.Close(fd)
		return
	}
	h.mu.Lock()
	h.hup, h.hupFD = w, fd
	h.mu.Unlock()
}

// hungUp drops the connection once the input before the hang-up has
// gone to the guest, and chardev.Input has had its chance to see the end
// of input and let go of the fd (it waits while the UART's FIFO is full):
// the fd is closed by the drop, and a watch left on a closed fd number
// could catch the next client's. settled counts the checks that found
// nothing left; the drop comes on the second, a poll interval later.
func (h *com1Host) hungUp(gen uint64) {
	h.mu.Lock()
	first := h.gen == gen && !h.checking
	h.checking = true
	h.mu.Unlock()
	if first {
		h.checkHungUp(gen, 0)
	}
}

func (h *com1Host) checkHungUp(gen uint64, settled int) {
	h.mu.Lock()
	fd, w := h.hupFD, h.hup
	current := h.gen == gen && h.connected
	h.mu.Unlock()
	if !current || w == nil {
		return // already dropped
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
	if err == nil && n == 0 && h.rx.Room() > 0 {
		settled++
	} else {
		settled = 0
	}
	if settled >= 2 {
		h.lost(gen)
		return
	}
	w.Modify(0)
	time.AfterFunc(20*time.Millisecond, func() {
		h.loop.Post(func() { h.checkHungUp(gen, settled) })
	})
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
	if h.hup != nil {
		h.hup.Remove()
		unix.Close(h.hupFD)
		h.hup, h.hupFD = nil, -1
	}
	h.backend.Drop(c)
}
