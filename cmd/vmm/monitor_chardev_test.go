package main

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"vmm/chardev"
)

// recSink records the connections a front end is handed.
type recSink struct{ conns chan chardev.Conn }

func newRecSink() *recSink                  { return &recSink{conns: make(chan chardev.Conn, 8)} }
func (r *recSink) Connected(c chardev.Conn) { r.conns <- c }
func (r *recSink) Disconnected()            {}

func (r *recSink) next(t *testing.T) chardev.Conn {
	t.Helper()
	select {
	case c := <-r.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection handed to the front end")
		return nil
	}
}

func (r *recSink) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.conns:
		t.Fatalf("front end got a connection %+v; want none", c)
	default:
	}
}

// onLoop runs f on the loop and waits, as the monitor does.
func onLoop(t *testing.T, l *chardev.Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	if !l.Post(func() { f(); close(done) }) {
		t.Fatal("loop closed")
	}
	<-done
}

// TestHostChardevSocket: a socket chardev with no front end keeps its
// client for the device plugged in later, says so in its filename, and
// after detach holds the next client for the next front end.
func TestHostChardevSocket(t *testing.T) {
	loop, err := chardev.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	go loop.Run()
	defer loop.Close()
	path := filepath.Join(t.TempDir(), "c.sock")
	h := newHostChardev(chardev.NewSocket(chardev.SocketConfig{ID: "c", Path: path, Server: true}))
	if err := h.Start(loop, nil); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got, want := h.filename(), "disconnected:unix:"+path+",server=on"; got != want {
		t.Errorf("filename before a client = %q; want %q", got, want)
	}
	peer, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !h.connected() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got, want := h.filename(), "unix:"+path+",server=on"; got != want {
		t.Errorf("filename with a client = %q; want %q", got, want)
	}
	a := newRecSink()
	onLoop(t, loop, func() { h.attach(a) })
	c := a.next(t)
	// The front end leaves; the peer is dropped by the port as on a
	// hang-up, and the next peer waits for the next front end.
	onLoop(t, loop, func() { h.detach(); h.Drop(c) })
	if h.connected() {
		t.Error("connected() after the port dropped its peer; want false")
	}
	peer2, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer peer2.Close()
	for !h.connected() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	a.none(t)
	b := newRecSink()
	onLoop(t, loop, func() { h.attach(b) })
	if c2 := b.next(t); c2 == nil || c2 == c {
		t.Errorf("second front end got %+v; want the second peer's connection", c2)
	}
}

// TestHostChardevPersistent: a backend whose connection outlives Drop
// (null, file, ringbuf…) hands the same connection to each front end.
func TestHostChardevPersistent(t *testing.T) {
	loop, err := chardev.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	go loop.Run()
	defer loop.Close()
	rb := chardev.NewRingbuf("r", 64)
	h := newHostChardev(rb)
	if !h.persistent {
		t.Fatal("ringbuf not persistent")
	}
	a := newRecSink()
	if err := h.Start(loop, a); err != nil {
		t.Fatal(err)
	}
	if c := a.next(t); c != chardev.Conn(rb) {
		t.Fatalf("first front end got %+v; want the ring", c)
	}
	onLoop(t, loop, func() { h.detach(); h.Drop(rb) })
	b := newRecSink()
	onLoop(t, loop, func() { h.attach(b) })
	if c := b.next(t); c != chardev.Conn(rb) {
		t.Errorf("second front end got %+v; want the ring again", c)
	}
	if got := h.filename(); got != "ringbuf" {
		t.Errorf("filename = %q; want ringbuf", got)
	}
}
