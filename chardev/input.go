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
// backpressure: while the device is full the fd is out of the loop
// altogether. (Watching it for nothing is not enough: epoll reports a
// hang-up whatever was asked, and a peer that left behind a full FIFO
// would spin the loop until the guest read.)
type Input struct {
	loop  *Loop
	fd    int
	dst   Receiver
	onEnd func()

	mu sync.Mutex
	// The fields below are guarded by mu.
	watch  *Watch // nil while paused, ended or closed
	ended  bool   // end of input or a hard error was read
	closed bool
}

// AttachInput starts feeding fd (non-blocking or not) into dst. When
// the input ends (end of file, a peer's hang-up, a hard error) after
// everything before it went to dst, onEnd (if set) runs on the loop
// goroutine. An fd epoll cannot watch (a regular file) is read by a
// goroutine instead, still paced by the device's room.
func AttachInput(loop *Loop, fd int, dst Receiver, onEnd func()) (*Input, error) {
	in := &Input{loop: loop, fd: fd, dst: dst, onEnd: onEnd}
	// The loop may call ready as soon as the fd is added: ready waits on
	// mu (in pause) until the watch is recorded.
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
	in.watch = w
	in.mu.Unlock()
	dst.OnSpace(in.resume)
	return in, nil
}

// Close stops reading for good, before the owner closes fd. onEnd is
// not called. Call it on the loop goroutine (where ready runs), so no
// read of fd is in progress; a goroutine reading a non-pollable fd
// stops at its next read.
func (in *Input) Close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	in.watch.Remove()
	in.watch = nil
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
		if err != nil {
			slog.Debug("input ended", "fd", in.fd, "err", err)
		}
		in.end()
		return
	}
	in.dst.Receive(buf[:n]) // fits: at most room bytes were read
	if in.dst.Room() == 0 {
		in.pause()
	}
}

// end is the input's end: nothing more is read, and the owner hears.
func (in *Input) end() {
	in.mu.Lock()
	if in.ended || in.closed {
		in.mu.Unlock()
		return
	}
	in.ended = true
	in.watch.Remove()
	in.watch = nil
	in.mu.Unlock()
	if in.onEnd != nil {
		in.loop.Post(in.onEnd)
	}
}

// pause takes the fd out of the loop while the device is full. The
// guest may make room between our look and the removal: its OnSpace then
// found the fd still watched and did nothing, so look again after.
func (in *Input) pause() {
	in.mu.Lock()
	in.watch.Remove()
	in.watch = nil
	in.mu.Unlock()
	if in.dst.Room() > 0 {
		in.resume()
	}
}

// resume puts the fd back in the loop (a new registration: an event
// fetched for the old one is dropped by the loop).
func (in *Input) resume() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ended || in.closed || in.watch != nil {
		return
	}
	w, err := in.loop.Add(in.fd, unix.EPOLLIN, in.ready)
	if err != nil {
		slog.Debug("input not resumed", "fd", in.fd, "err", err)
		return
	}
	in.watch = w
}

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
		in.mu.Lock()
		closed := in.closed
		in.mu.Unlock()
		if closed {
			return
		}
		n, err := unix.Read(in.fd, buf)
		if n <= 0 || err != nil {
			in.end()
			return
		}
		data := buf[:n]
		for len(data) > 0 {
			k := in.dst.Receive(data)
			data = data[k:]
			if len(data) > 0 && in.dst.Room() == 0 {
				<-space
			}
		}
	}
}
