// Package chardev holds the host side of the guest's character devices
// (stdio, files, sockets…) and the epoll event loop that drives them.
package chardev

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Handler is called on the loop goroutine with the ready events.
type Handler func(events uint32)

// Loop is one epoll event loop. Handlers run on its goroutine, one at a
// time; Add, Modify and Remove may be called from any goroutine.
type Loop struct {
	epfd   int
	wakeFD int

	mu sync.Mutex
	// handlers maps fd to its handler; guarded by mu.
	handlers map[int]Handler
	closed   bool // guarded by mu
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
	l := &Loop{epfd: epfd, wakeFD: wake, handlers: map[int]Handler{}}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl add wake eventfd: %w", err)
	}
	return l, nil
}

// ErrNotPollable is returned by Add for fds epoll cannot watch (regular
// files, /dev/null): they are always ready, so callers read them directly.
var ErrNotPollable = errors.New("fd cannot be polled")

// Add watches fd for events (EPOLLIN, EPOLLOUT, …; 0 watches nothing yet).
func (l *Loop) Add(fd int, events uint32, h Handler) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("event loop closed")
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("fd %d: %w", fd, ErrNotPollable)
		}
		return fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
	}
	l.handlers[fd] = h
	return nil
}

// Modify changes the events watched on fd.
func (l *Loop) Modify(fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl mod fd %d: %w", fd, err)
	}
	return nil
}

// Remove stops watching fd. The caller still owns and closes it.
func (l *Loop) Remove(fd int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.handlers, fd)
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return fmt.Errorf("epoll_ctl del fd %d: %w", fd, err)
	}
	return nil
}

// Run dispatches events until Close is called.
func (l *Loop) Run() error {
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == l.wakeFD {
				var buf [8]byte
				unix.Read(l.wakeFD, buf[:])
				l.mu.Lock()
				closed := l.closed
				l.mu.Unlock()
				if closed {
					l.closeFDs()
					return nil
				}
				continue
			}
			l.mu.Lock()
			h := l.handlers[fd]
			l.mu.Unlock()
			if h != nil {
				h(ev.Events)
			}
		}
	}
}

// Close makes Run return after the handler that is running, if any.
func (l *Loop) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	var one = [8]byte{1}
	unix.Write(l.wakeFD, one[:])
}

func (l *Loop) closeFDs() {
	unix.Close(l.epfd)
	unix.Close(l.wakeFD)
}
