package chardev

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vmm/soak"
)

// socketPair returns a non-blocking stream socketpair, closed at the end.
func socketPair(t *testing.T) [2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return [2]int{fds[0], fds[1]}
}

// readConn reads c until n bytes, the end, or 5 s; it returns what
// came and the error that stopped it (nil when n bytes came).
func readConn(t *testing.T, c Conn, n int) ([]byte, error) {
	t.Helper()
	buf := make([]byte, 4096)
	var out []byte
	for deadline := time.Now().Add(5 * time.Second); len(out) < n; {
		k, err := c.Readv([][]byte{buf})
		out = append(out, buf[:k]...)
		switch {
		case k > 0:
		case errors.Is(err, ErrWouldBlock) && time.Now().Before(deadline):
			time.Sleep(time.Millisecond)
		default:
			return out, err
		}
	}
	return out, nil
}

// TestConnVectoredNoAllocs: Readv and Writev across 64 guest-sized
// buffers move the bytes in order and allocate nothing (x/sys/unix's
// allocate a []Iovec per call, which ran the GC through host→guest
// transfers); an empty Readv on a quiet connection would block.
func TestConnVectoredNoAllocs(t *testing.T) {
	fds := socketPair(t)
	for _, fd := range fds {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	a, b := NewStreamConn(fds[0]), NewStreamConn(fds[1])
	const nbuf, size = 64, 1024
	want := soak.Pattern(0, nbuf*size)
	out := make([][]byte, nbuf)
	in := make([][]byte, nbuf+1) // with an empty buffer, skipped
	got := make([]byte, nbuf*size)
	for i := range out {
		out[i] = want[i*size : (i+1)*size]
		in[i+1] = got[i*size : (i+1)*size]
	}
	in[0] = got[:0]
	allocs := testing.AllocsPerRun(20, func() {
		clear(got)
		if n, err := a.Writev(out); n != len(want) || err != nil {
			t.Fatalf("Writev = %d, %v; want %d, nil", n, err, len(want))
		}
		if n, ok := b.Pending(); n != len(want) || !ok {
			t.Fatalf("Pending = %d, %v; want %d, true", n, ok, len(want))
		}
		if n, err := b.Readv(in); n != len(want) || err != nil {
			t.Fatalf("Readv = %d, %v; want %d, nil", n, err, len(want))
		}
	})
	if !bytes.Equal(got, want) {
		t.Errorf("Readv got other bytes than Writev sent")
	}
	if allocs != 0 {
		t.Errorf("Readv+Writev+Pending allocated %.1f times per call; want 0", allocs)
	}
	if n, err := a.Writev([][]byte{nil, {}}); n != 0 || err != nil {
		t.Errorf("Writev(empty) = %d, %v; want 0, nil", n, err)
	}
	if n, err := b.Readv(in); n != 0 || err != ErrWouldBlock {
		t.Errorf("Readv(nothing pending) = %d, %v; want 0, ErrWouldBlock", n, err)
	}
	if allocs := testing.AllocsPerRun(20, func() { b.Readv(in) }); allocs != 0 {
		t.Errorf("Readv that would block allocated %.1f times per call; want 0", allocs)
	}
}

// TestStreamConnWouldBlockAndWatch: a socket whose peer does not read
// fills and says ErrWouldBlock; Watch reports Writable once the peer
// reads and Readable once it writes.
func TestStreamConnWouldBlockAndWatch(t *testing.T) {
	loop := startLoop(t)
	fds := socketPair(t)
	c := NewStreamConn(fds[0])
	ready := make(chan Ready, 64)
	w, err := c.Watch(loop, func(r Ready) { ready <- r })
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Post(w.Remove)
	chunk := [][]byte{bytes.Repeat([]byte("x"), 64<<10)}
	sent := 0
	for {
		n, err := c.Writev(chunk)
		if errors.Is(err, ErrWouldBlock) {
			break
		}
		if err != nil {
			t.Fatalf("Writev = %d, %v before the buffer filled", n, err)
		}
		sent += n
	}
	waitReady := func(want Ready) {
		t.Helper()
		for deadline := time.After(5 * time.Second); ; {
			select {
			case r := <-ready:
				if r&want != 0 {
					return
				}
			case <-deadline:
				t.Fatalf("no %v readiness", want)
			}
		}
	}
	for len(ready) > 0 {
		<-ready
	}
	buf := make([]byte, sent)
	for got := 0; got < sent; {
		k, _ := unix.Read(fds[1], buf)
		got += max(k, 0)
	}
	waitReady(Writable)
	if n, err := c.Writev([][]byte{[]byte("more")}); n != 4 || err != nil {
		t.Errorf("Writev after Writable = %d, %v; want 4, nil", n, err)
	}
	unix.Write(fds[1], []byte("in"))
	waitReady(Readable)
	if got, err := readConn(t, c, 2); string(got) != "in" || err != nil {
		t.Errorf("Readv after Readable = %q, %v; want \"in\", nil", got, err)
	}
}

// TestStreamConnPeerGone: what a departing socket peer sent is read,
// then its end is ErrPeerGone, and writing to it is ErrPeerGone too.
func TestStreamConnPeerGone(t *testing.T) {
	fds := socketPair(t)
	c := NewStreamConn(fds[0])
	unix.Write(fds[1], []byte("last words"))
	unix.Shutdown(fds[1], unix.SHUT_RDWR)
	got, err := readConn(t, c, 100)
	if string(got) != "last words" || !errors.Is(err, ErrPeerGone) {
		t.Errorf("Readv from a departed peer = %q, %v; want \"last words\", ErrPeerGone", got, err)
	}
	if n, err := c.Writev([][]byte{[]byte("anyone?")}); n != 0 || !errors.Is(err, ErrPeerGone) {
		t.Errorf("Writev to a departed peer = %d, %v; want 0, ErrPeerGone", n, err)
	}
}

// TestStreamConnSalvage: at disconnect, Salvage appends everything the
// departed peer sent that nobody read, after what dst holds.
func TestStreamConnSalvage(t *testing.T) {
	fds := socketPair(t)
	c := NewStreamConn(fds[0])
	want := soak.Pattern(0, 100<<10) // more than salvageMin
	for off := 0; off < len(want); {
		n, err := unix.Write(fds[1], want[off:])
		if err != nil {
			t.Fatalf("peer write: %v", err)
		}
		off += n
	}
	unix.Close(fds[1])
	got := c.Salvage([]byte("held:"))
	if !bytes.Equal(got, append([]byte("held:"), want...)) {
		t.Errorf("Salvage = %d bytes; want held: and the peer's %d", len(got), len(want))
	}
	if n, err := c.Readv([][]byte{make([]byte, 16)}); n != 0 || !errors.Is(err, ErrPeerGone) {
		t.Errorf("Readv after Salvage = %d, %v; want 0, ErrPeerGone", n, err)
	}
}

// TestPtyConn: the pty's connection reads what the slave's user wrote,
// salvages what it wrote before closing, and then reports the peer gone.
func TestPtyConn(t *testing.T) {
	sink := newRecSink()
	p := NewPty("pty0")
	if err := p.Start(startLoop(t), sink); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	slave, err := unix.Open(p.Path(), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := sink.waitConns(t, 1)
	unix.Write(slave, []byte("hello"))
	if got, err := readConn(t, c, 5); string(got) != "hello" || err != nil {
		t.Errorf("Readv = %q, %v; want hello, nil", got, err)
	}
	if n, err := c.Writev([][]byte{[]byte("to "), []byte("peer")}); n != 7 || err != nil {
		t.Errorf("Writev = %d, %v; want 7, nil", n, err)
	}
	unix.Write(slave, []byte("bye"))
	unix.Close(slave)
	if got := c.Salvage(nil); string(got) != "bye" {
		t.Errorf("Salvage after the slave closed = %q; want bye", got)
	}
	if n, err := c.Readv([][]byte{make([]byte, 16)}); n != 0 || !errors.Is(err, ErrPeerGone) {
		t.Errorf("Readv with no slave = %d, %v; want 0, ErrPeerGone", n, err)
	}
}

// TestPipeConn: a FIFO's connection would block when empty, keeps its
// unread bytes at Salvage (they are still the FIFO's), and never ends:
// it is opened both ways, so a writer leaving is no end of input.
func TestPipeConn(t *testing.T) {
	base := filepath.Join(t.TempDir(), "p")
	c := startPipe(t, base)
	buf := make([]byte, 64)
	if n, err := c.Readv([][]byte{buf}); n != 0 || err != ErrWouldBlock {
		t.Errorf("Readv of an empty FIFO = %d, %v; want 0, ErrWouldBlock", n, err)
	}
	w, err := os.OpenFile(base+".in", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("kept"))
	w.Close()
	if got := c.Salvage(nil); len(got) != 0 {
		t.Errorf("Salvage of a FIFO = %q; want nothing (the FIFO keeps it)", got)
	}
	if got, err := readConn(t, c, 4); string(got) != "kept" || err != nil {
		t.Errorf("Readv after the writer left = %q, %v; want kept, nil", got, err)
	}
	if n, err := c.Readv([][]byte{buf}); n != 0 || err != ErrWouldBlock {
		t.Errorf("Readv after the writer left = %d, %v; want 0, ErrWouldBlock", n, err)
	}
}

// TestFileConn: a file's input ends with io.EOF (not a departed peer),
// its output appends, and a regular file needs no watch.
func TestFileConn(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	os.WriteFile(in, []byte("input"), 0o644)
	sink := newRecSink()
	f := NewFile("f", out, in, false)
	loop := startLoop(t)
	if err := f.Start(loop, sink); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := sink.waitConns(t, 1)
	if w, err := c.Watch(loop, func(Ready) {}); err != nil || w.ws != [2]*Watch{} {
		t.Errorf("Watch of regular files = %v, %v; want nothing registered, nil", w, err)
	}
	if n, ok := c.Pending(); n != 5 || !ok {
		t.Errorf("Pending = %d, %v; want 5, true", n, ok)
	}
	if got, err := readConn(t, c, 100); string(got) != "input" || err != io.EOF {
		t.Errorf("Readv to the end = %q, %v; want input, io.EOF", got, err)
	}
	if n, err := c.Writev([][]byte{[]byte("out"), []byte("put")}); n != 6 || err != nil {
		t.Errorf("Writev = %d, %v; want 6, nil", n, err)
	}
	if got, _ := os.ReadFile(out); string(got) != "output" {
		t.Errorf("file holds %q; want output", got)
	}
	if got := c.Salvage(nil); len(got) != 0 {
		t.Errorf("Salvage of a file = %q; want nothing", got)
	}
}

// TestStdioConn: stdio's connection reads stdin and writes stdout (here
// pipes); stdin's end is io.EOF, after which stdout still works, and a
// full stdout would block.
func TestStdioConn(t *testing.T) {
	var stdin, stdout [2]int
	for _, p := range []*[2]int{&stdin, &stdout} {
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
	}
	// Start reopens fds 0 and 1: point them at the pipes meanwhile.
	saved := [2]int{}
	for fd, to := range []int{stdin[0], stdout[1]} {
		var err error
		if saved[fd], err = unix.Dup(fd); err != nil {
			t.Fatal(err)
		}
		unix.Dup2(to, fd)
	}
	s := NewStdio("s", true)
	sink := newRecSink()
	err := s.Start(startLoop(t), sink)
	for fd := range saved {
		unix.Dup2(saved[fd], fd)
		unix.Close(saved[fd])
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := sink.waitConns(t, 1)
	unix.Write(stdin[1], []byte("typed"))
	unix.Close(stdin[1])
	if got, err := readConn(t, c, 100); string(got) != "typed" || err != io.EOF {
		t.Errorf("Readv of stdin = %q, %v; want typed, io.EOF", got, err)
	}
	chunk := [][]byte{bytes.Repeat([]byte("y"), 64<<10)}
	for i := 0; ; i++ {
		n, err := c.Writev(chunk)
		if err == ErrWouldBlock {
			break
		}
		if err != nil || n == 0 || i > 1000 {
			t.Fatalf("Writev to stdout = %d, %v; want it to fill, then ErrWouldBlock", n, err)
		}
	}
}

// TestNullAndRingbufConns: null takes everything and has no input; a
// ringbuf keeps the newest bytes, counting what it dropped.
func TestNullAndRingbufConns(t *testing.T) {
	n := NewNull("n")
	r := NewRingbuf("r", 8)
	for _, c := range []Conn{n, r} {
		if k, err := c.Writev([][]byte{[]byte("0123"), []byte("456789")}); k != 10 || err != nil {
			t.Errorf("%T.Writev = %d, %v; want 10, nil", c, k, err)
		}
		if k, err := c.Readv([][]byte{make([]byte, 4)}); k != 0 || err != io.EOF {
			t.Errorf("%T.Readv = %d, %v; want 0, io.EOF", c, k, err)
		}
		if w, err := c.Watch(nil, func(Ready) {}); w != nil || err != nil {
			t.Errorf("%T.Watch = %v, %v; want nil, nil (never blocks)", c, w, err)
		}
		if got := c.Salvage([]byte("x")); string(got) != "x" {
			t.Errorf("%T.Salvage = %q; want x", c, got)
		}
	}
	if got, dropped := r.Contents(); string(got) != "23456789" || dropped != 2 {
		t.Errorf("ringbuf Contents = %q, %d dropped; want 23456789, 2", got, dropped)
	}
}
