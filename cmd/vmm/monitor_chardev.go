package main

// The chardevs as the monitor sees them. Each backend is wrapped in a
// hostChardev, the one Sink it ever reports to, which forwards to the
// port currently plugged into it (its front end) or, with none, keeps
// the connection for the next one: so a chardev can be added before its
// device (QMP chardev-add, then device_add) and outlives a device_del.

import (
	"fmt"
	"sync"

	"vmm/chardev"
)

// hostChardev is a chardev.Backend (to its port) and a chardev.Sink (to
// its backend). Its methods run on the event loop, as Sink and Backend
// calls do; mu guards what query-chardev reads from the QMP goroutine.
type hostChardev struct {
	backend chardev.Backend
	// persistent: the connection survives Drop (file, pipe, null,
	// ringbuf, stdio), so a later front end gets it again.
	persistent bool

	mu sync.Mutex
	// The fields below are guarded by mu.
	front chardev.Sink // the port plugged in, or nil
	conn  chardev.Conn // the backend's current connection, if any
	owner string       // what uses it: a -device id, "serial", "monitor"; "" if free
}

func newHostChardev(b chardev.Backend) *hostChardev {
	h := &hostChardev{backend: b}
	switch b.(type) {
	case *chardev.File, *chardev.Pipe, *chardev.Null, *chardev.Ringbuf, *chardev.Stdio:
		h.persistent = true
	}
	return h
}

// ID, Start, Drop and Close make it the port's Backend.

func (h *hostChardev) ID() string { return h.backend.ID() }

// Start starts the backend with sink as its first front end.
func (h *hostChardev) Start(loop *chardev.Loop, sink chardev.Sink) error {
	h.mu.Lock()
	h.front = sink
	h.mu.Unlock()
	return h.backend.Start(loop, h)
}

func (h *hostChardev) Drop(c chardev.Conn) {
	h.mu.Lock()
	if !h.persistent && h.conn != nil && h.conn == c {
		h.conn = nil
	}
	h.mu.Unlock()
	h.backend.Drop(c)
}

func (h *hostChardev) Close() error { return h.backend.Close() }

// Connected and Disconnected make it the backend's Sink.

func (h *hostChardev) Connected(c chardev.Conn) {
	h.mu.Lock()
	h.conn = c
	front := h.front
	h.mu.Unlock()
	if front != nil {
		front.Connected(c)
	}
}

func (h *hostChardev) Disconnected() {
	h.mu.Lock()
	h.conn = nil
	front := h.front
	h.mu.Unlock()
	if front != nil {
		front.Disconnected()
	}
}

// attach plugs a front end in and hands it the current connection. On
// the event loop.
func (h *hostChardev) attach(front chardev.Sink) {
	h.mu.Lock()
	h.front = front
	c := h.conn
	h.mu.Unlock()
	if c != nil {
		front.Connected(c)
	}
}

// detach unplugs the front end; the connection stays. On the event loop.
func (h *hostChardev) detach() {
	h.mu.Lock()
	h.front = nil
	h.mu.Unlock()
}

// connected reports whether the backend has a peer now.
func (h *hostChardev) connected() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conn != nil
}

func (h *hostChardev) setOwner(o string) {
	h.mu.Lock()
	h.owner = o
	h.mu.Unlock()
}

func (h *hostChardev) ownerName() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.owner
}

// filename is query-chardev's description, in QEMU's forms.
func (h *hostChardev) filename() string {
	switch b := h.backend.(type) {
	case *chardev.Socket:
		cfg := b.Config()
		s := "unix:" + cfg.Path
		if cfg.Path == "" {
			s = "tcp:" + b.Addr()
		}
		if cfg.Server {
			s += ",server=on"
		}
		if !h.connected() {
			s = "disconnected:" + s
		}
		return s
	case *chardev.Pty:
		return "pty:" + b.Path()
	case *chardev.File:
		return "file"
	case *chardev.Pipe:
		return "pipe"
	case *chardev.Ringbuf:
		return "ringbuf"
	case *chardev.Null:
		return "null"
	case *chardev.Stdio:
		return "stdio"
	}
	return fmt.Sprintf("%T", h.backend)
}
