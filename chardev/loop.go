// Package chardev holds the host side of the guest's character devices
// (stdio, files, pipes, ptys, sockets, null, ringbuf) and the epoll event
// loop that drives them.
//
// A backend hands its front end (a guest port, COM1) each connection as
// a Conn: non-blocking vectored reads and writes whose errors say
// would-block (ErrWouldBlock), the peer left (ErrPeerGone) or input
// ended (io.EOF); Salvage of what a departing peer left unread; and
// edge-triggered readiness through Watch. The front end never learns
// which backend it has. Files: conn.go (the contract), fdconn.go (files,
// pipes, stdio, sockets, ptys), iov_unsafe.go (readv and writev without
// allocations); Null and Ringbuf are their own connections.
//
// Threads: the Loop's goroutine owns every connection fd and runs every
// Sink callback; a backend reports to its sink only from there (or during
// Start, before the loop runs its fds). Work that starts elsewhere — a
// socket's reconnect timer, the pty's attach watcher — is handed over
// with Loop.Post, or Loop.Do where the caller must wait for it (a vCPU
// thread resetting a device, a control request). Loop registrations are
// Watches, keyed by registration, never by fd number.
//
// Lock order (outer first): a backend's mu, then Loop.mu.
// Loop.mu is a leaf: handlers and posted functions run without it. A
// backend calls its sink only with its own mu released (the sink, a
// device, takes its own lock and may call Drop back).
package chardev

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Handler is called on the loop goroutine with the ready events.
type Handler func(events uint32)

// Loop is one epoll event loop. Handlers and posted functions run on its
// goroutine, one at a time; Add, Watch.Modify, Watch.Remove and Post may
// be called from any goroutine.
//
// Handlers are keyed by registration, not by fd number: each Add gets a
// fresh id that epoll carries back with the event, so an event for a
// removed registration whose fd number the kernel has since reused
// (already fetched by epoll_wait, or for a new Add of the same number)
// never reaches the new registration's handler.
type Loop struct {
	epfd   int
	wakeFD int

	mu sync.Mutex
	// watches maps a registration id to its watch; guarded by mu.
	watches map[uint64]*Watch
	nextID  uint64   // guarded by mu
	posted  []func() // guarded by mu; run by Run in order
	closed  bool     // guarded by mu
	running bool     // guarded by mu: Run has started

	owner    atomic.Int64  // the goroutine running Run (0: none)
	stopped  chan struct{} // closed once no posted function can run any more
	stopOnce sync.Once
}

// Watch is one registration of an fd with a Loop.
type Watch struct {
	l  *Loop
	fd int
	id uint64
	h  Handler
}

// NewLoop creates an event loop; Run drives it.
func NewLoop() (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	l := &Loop{epfd: epfd, wakeFD: wake, watches: map[uint64]*Watch{}, nextID: 1, stopped: make(chan struct{})}
	ev := epollEvent(unix.EPOLLIN, 0) // id 0 is the wake eventfd
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl add wake eventfd: %w", err)
	}
	return l, nil
}

// epollEvent carries a registration id in epoll's 64-bit user data.
func epollEvent(events uint32, id uint64) unix.EpollEvent {
	return unix.EpollEvent{Events: events, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// ErrNotPollable is returned by Add for fds epoll cannot watch (regular
// files, /dev/null): they are always ready, so callers read them directly.
var ErrNotPollable = errors.New("fd cannot be polled")

// Add watches fd for events (EPOLLIN, EPOLLOUT, …; 0 watches nothing
// yet) and returns the registration, which Modify and Remove name.
func (l *Loop) Add(fd int, events uint32, h Handler) (*Watch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("event loop closed")
	}
	w := &Watch{l: l, fd: fd, id: l.nextID, h: h}
	ev := epollEvent(events, w.id)
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("fd %d: %w", fd, ErrNotPollable)
		}
		return nil, fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
	}
	l.nextID++
	l.watches[w.id] = w
	return w, nil
}

// FD is the watched fd.
func (w *Watch) FD() int { return w.fd }

// Modify changes the events watched. It fails on a removed watch.
func (w *Watch) Modify(events uint32) error {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if w.l.watches[w.id] != w {
		return fmt.Errorf("epoll_ctl mod fd %d: watch removed", w.fd)
	}
	ev := epollEvent(events, w.id)
	if err := unix.EpollCtl(w.l.epfd, unix.EPOLL_CTL_MOD, w.fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl mod fd %d: %w", w.fd, err)
	}
	return nil
}

// Remove stops watching; the handler is not called again, even for an
// event already fetched. The caller still owns and closes the fd. A nil
// or removed watch is a no-op.
func (w *Watch) Remove() error {
	if w == nil {
		return nil
	}
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if w.l.watches[w.id] != w {
		return nil
	}
	delete(w.l.watches, w.id)
	if w.l.closed {
		return nil
	}
	if err := unix.EpollCtl(w.l.epfd, unix.EPOLL_CTL_DEL, w.fd, nil); err != nil {
		return fmt.Errorf("epoll_ctl del fd %d: %w", w.fd, err)
	}
	return nil
}

// Post runs f on the loop goroutine, after the handler or posted
// function running now, in the order posted. It is how timers, watcher
// goroutines and vCPU threads hand work to the owner of chardev and port
// state. It reports false (and f never runs) once the loop is closed.
func (l *Loop) Post(f func()) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.posted = append(l.posted, f)
	l.mu.Unlock()
	l.wake()
	return true
}

// Do runs f on the loop goroutine and returns once it has run: the
// synchronous Post, for vCPU threads and control requests that change
// state the loop owns. Called on the loop goroutine (from a handler or a
// posted function) it runs f at once instead of deadlocking. It reports
// false, with f not run, if the loop has stopped or stops before f's
// turn; the caller then knows no loop goroutine will run again. The
// caller must not hold a lock the loop's handlers take. Before Run
// starts, Do waits for it.
func (l *Loop) Do(f func()) bool {
	if l.OnLoop() {
		f()
		return true
	}
	done := make(chan struct{})
	if !l.Post(func() { f(); close(done) }) {
		return false
	}
	select {
	case <-done:
		return true
	case <-l.stopped:
		// Run returns between functions: f ran whole or not at all.
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
}

// OnLoop reports whether the caller is the loop goroutine.
func (l *Loop) OnLoop() bool {
	id := l.owner.Load()
	return id != 0 && id == goid()
}

// goid is the calling goroutine's id, from the first line of its stack
// ("goroutine 18 [running]:"). Go has no cheaper public way; Do needs it
// only off the data paths.
func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseInt(string(b), 10, 64)
	return id
}

// stop marks the loop as never running a posted function again.
func (l *Loop) stop() { l.stopOnce.Do(func() { close(l.stopped) }) }

func (l *Loop) wake() {
	var one = [8]byte{1}
	unix.Write(l.wakeFD, one[:])
}

// Run dispatches events and posted functions until Close is called.
func (l *Loop) Run() error {
	l.mu.Lock()
	l.running = true
	l.mu.Unlock()
	l.owner.Store(goid())
	defer l.stop()
	defer l.owner.Store(0)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == 0 {
				var buf [8]byte
				unix.Read(l.wakeFD, buf[:])
				l.mu.Lock()
				closed, posted := l.closed, l.posted
				l.posted = nil
				l.mu.Unlock()
				if closed {
					l.closeFDs()
					return nil
				}
				for _, f := range posted {
					f()
				}
				continue
			}
			l.mu.Lock()
			w := l.watches[id]
			l.mu.Unlock()
			if w != nil {
				w.h(events[i].Events)
			}
		}
	}
}

// Close makes Run return after the handler that is running, if any;
// functions posted and not yet run are dropped (a Do waiting for one
// returns false).
func (l *Loop) Close() {
	l.mu.Lock()
	l.closed = true
	l.posted = nil
	running := l.running
	l.mu.Unlock()
	l.wake()
	if !running {
		l.stop() // no Run to return: nothing posted will run
	}
}

func (l *Loop) closeFDs() {
	unix.Close(l.epfd)
	unix.Close(l.wakeFD)
}
