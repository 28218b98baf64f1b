package chardev

import (
	"errors"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"
)

// escapeMux puts QEMU's Ctrl-A keys in front of a stdio chardev's input:
// stdin is read on the loop, run through an Escape, and what remains goes
// into a pipe whose read end is the connection's input. A front end that
// stops reading fills the pipe, and then stdin is left unread
// (backpressure), as if the front end read stdin itself.
type escapeMux struct {
	esc *Escape // used on the loop goroutine only
	in  int     // stdin, non-blocking; not ours to close
	r   int     // the pipe's read end, handed to the front end

	// mu is held by the handlers and by close, which may come from
	// another goroutine; never while the Escape's callbacks run.
	mu sync.Mutex
	// The fields below are guarded by mu.
	w         int // the pipe's write end
	inW, outW *Watch
	pending   []byte // filtered input the pipe has not taken yet
	closed    bool
}

// newEscapeMux starts filtering in (non-blocking) through esc. It
// returns ErrNotPollable for an fd epoll cannot watch (a regular file is
// not a keyboard: the caller then reads it directly).
func newEscapeMux(loop *Loop, in int, esc *Escape) (*escapeMux, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	m := &escapeMux{esc: esc, in: in, r: p[0], w: p[1]}
	m.mu.Lock()
	defer m.mu.Unlock()
	var err error
	if m.outW, err = loop.Add(m.w, 0, m.writable); err == nil {
		m.inW, err = loop.Add(in, unix.EPOLLIN, m.readable)
	}
	if err != nil {
		m.closeLocked()
		return nil, err
	}
	return m, nil
}

func (m *escapeMux) readable(uint32) {
	buf := make([]byte, 4096)
	n, err := unix.Read(m.in, buf)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if n > 0 {
		data := m.esc.Filter(buf[:n]) // may stop the VM: not under mu
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.closed {
			m.send(data)
		}
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		// End of stdin: the front end sees end of input once it has
		// read what came before.
		m.inW.Remove()
		m.inW = nil
		if len(m.pending) == 0 {
			m.closeWriter()
		}
	}
}

// send queues b behind what the pipe has not taken yet and writes what
// it can; while anything waits, stdin is left unread (a read already
// fetched by the loop may still come: it queues behind). Caller holds mu.
func (m *escapeMux) send(b []byte) {
	m.pending = append(m.pending, b...)
	for len(m.pending) > 0 && m.w >= 0 {
		n, err := unix.Write(m.w, m.pending)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			slog.Debug("stdio input dropped: the front end closed its end", "err", err)
			m.pending = m.pending[:0]
			break
		}
		m.pending = m.pending[n:]
	}
	waiting := len(m.pending) > 0
	if m.inW != nil {
		if waiting {
			m.inW.Modify(0)
		} else {
			m.inW.Modify(unix.EPOLLIN)
		}
	}
	if waiting {
		m.outW.Modify(unix.EPOLLOUT)
	} else {
		m.outW.Modify(0)
		m.pending = nil
	}
}

func (m *escapeMux) writable(uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.send(nil)
	if len(m.pending) == 0 && m.inW == nil {
		m.closeWriter() // stdin ended while input waited
	}
}

// closeWriter ends the front end's input. Caller holds mu.
func (m *escapeMux) closeWriter() {
	if m.w >= 0 {
		m.outW.Remove()
		unix.Close(m.w)
		m.w = -1
	}
}

// close stops filtering and closes the pipe (not stdin).
func (m *escapeMux) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closeLocked()
}

func (m *escapeMux) closeLocked() {
	m.closed = true
	m.inW.Remove()
	m.closeWriter()
	if m.r >= 0 {
		unix.Close(m.r)
		m.r = -1
	}
}
