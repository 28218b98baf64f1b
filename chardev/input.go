package chardev

import (
	"errors"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"
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

// Input pumps a host fd into a Receiver through the loop, with
// backpressure: the fd leaves the interest set while the device is full.
type Input struct {
	loop   *Loop
	fd     int
	watch  *Watch
	dst    Receiver
	filter func([]byte) []byte

	mu sync.Mutex
	// The fields below are guarded by mu.
	armed bool // EPOLLIN in the interest set
	eof   bool
}

// AttachInput starts feeding fd (non-blocking or not) into dst. filter,
// if set, rewrites each chunk (the Ctrl-A escape). An fd epoll cannot
// watch (a regular file) is read by a goroutine instead, still paced by
// the device's room.
func AttachInput(loop *Loop, fd int, dst Receiver, filter func([]byte) []byte) (*Input, error) {
	in := &Input{loop: loop, fd: fd, dst: dst, filter: filter}
	// The loop may call ready as soon as the fd is added: it waits on mu
	// until the watch is recorded.
	in.mu.Lock()
	w, err := loop.Add(fd, unix.EPOLLIN, in.ready)
	if errors.Is(err, ErrNotPollable) {
		in.mu.Unlock()
		go in.readBlocking()
		return in, nil
	}
	if err != nil {
		in.mu.Unlock()
		return nil, err
	}
	in.watch, in.armed = w, true
	in.mu.Unlock()
	dst.OnSpace(in.rearm)
	return in, nil
}

func (in *Input) ready(events uint32) {
	room := in.dst.Room()
	if room == 0 {
		in.pause()
		return
	}
	buf := make([]byte, room)
	n, err := unix.Read(in.fd, buf)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return
	}
	if n <= 0 {
		// EOF or a hard error (a closed terminal): no more input.
		if err != nil {
			slog.Debug("serial input ended", "fd", in.fd, "err", err)
		}
		in.mu.Lock()
		in.eof = true
		in.watch.Remove()
		in.mu.Unlock()
		return
	}
	data := buf[:n]
	if in.filter != nil {
		data = in.filter(data)
	}
	in.dst.Receive(data) // fits: at most room bytes were read
	if in.dst.Room() == 0 {
		in.pause()
	}
}

// pause takes the fd out of the interest set while the device is full.
// The guest may make room between our look and the disarm: its OnSpace
// then found the fd still armed and did nothing, so look again after.
func (in *Input) pause() {
	in.setArmed(false)
	if in.dst.Room() > 0 {
		in.setArmed(true)
	}
}

func (in *Input) setArmed(on bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.eof || in.armed == on {
		return
	}
	var ev uint32
	if on {
		ev = unix.EPOLLIN
	}
	if err := in.watch.Modify(ev); err == nil {
		in.armed = on
	}
}

func (in *Input) rearm() { in.setArmed(true) }

// readBlocking serves fds epoll refuses; space wakes it when full.
func (in *Input) readBlocking() {
	space := make(chan struct{}, 1)
	in.dst.OnSpace(func() {
		select {
		case space <- struct{}{}:
		default:
		}
	})
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(in.fd, buf)
		if n <= 0 || err != nil {
			return
		}
		data := buf[:n]
		if in.filter != nil {
			data = in.filter(data)
		}
		for len(data) > 0 {
			k := in.dst.Receive(data)
			data = data[k:]
			if len(data) > 0 && in.dst.Room() == 0 {
				<-space
			}
		}
	}
}
