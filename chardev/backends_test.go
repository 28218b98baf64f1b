package chardev

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// recSink records connection events, as a port would see them.
type recSink struct {
	mu    sync.Mutex
	conns []Conn
	downs int
	cond  *sync.Cond
}

func newRecSink() *recSink {
	s := &recSink{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *recSink) Connected(c Conn) {
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (s *recSink) Disconnected() {
	s.mu.Lock()
	s.downs++
	s.cond.Broadcast()
	s.mu.Unlock()
}

// waitConns waits until n connections were reported.
func (s *recSink) waitConns(t *testing.T, n int) Conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.conns) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections reported; want %d", len(s.conns), n)
		}
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	return s.conns[n-1]
}

// fdsOf is an fd connection's fds, for tests that look at them.
func fdsOf(c Conn) *fdConn { return c.(*fdConn) }

func startLoop(t *testing.T) *Loop {
	t.Helper()
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	go l.Run()
	t.Cleanup(l.Close)
	return l
}

func TestTCPServerOneClientAtATime(t *testing.T) {
	loop := startLoop(t)
	sink := newRecSink()
	s := NewSocket(SocketConfig{ID: "t", Host: "127.0.0.1", Port: 0, Server: true, NoDelay: true})
	if err := s.Start(loop, sink); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c := sink.waitConns(t, 1)
	if nd, err := unix.GetsockoptInt(fdsOf(c).r, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || nd == 0 {
		t.Errorf("TCP_NODELAY = %d, %v; want set (nodelay=on)", nd, err)
	}
	// A second concurrent client waits in the backlog: it is not served
	// while the first is, and what it writes is kept for later.
	second, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.Write([]byte("queued"))
	time.Sleep(50 * time.Millisecond)
	if n := len(sink.conns); n != 1 {
		t.Fatalf("%d connections while the first client is connected; want 1", n)
	}
	unix.Write(fdsOf(c).w, []byte("hi"))
	buf := make([]byte, 2)
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Read(buf); err != nil || string(buf) != "hi" {
		t.Errorf("first client read %q, %v; want hi", buf, err)
	}
	first.Close()
	s.Drop(c)
	c2 := sink.waitConns(t, 2) // the waiting client is served now
	buf = make([]byte, 6)
	deadline := time.Now().Add(5 * time.Second)
	n := 0
	for n < 6 && time.Now().Before(deadline) {
		k, _ := unix.Read(fdsOf(c2).r, buf[n:])
		if k > 0 {
			n += k
		}
	}
	if string(buf) != "queued" {
		t.Errorf("second client's early data = %q; want %q", buf, "queued")
	}
}

func TestTCPClientReconnect(t *testing.T) {
	loop := startLoop(t)
	// Find a free port, then leave it closed: the peer is not there yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	sink := newRecSink()
	s := NewSocket(SocketConfig{ID: "c", Host: "127.0.0.1", Port: addr.Port, Reconnect: 50 * time.Millisecond})
	if err := s.Start(loop, sink); err != nil {
		t.Fatalf("Start with reconnect and no peer = %v; want it to keep trying", err)
	}
	defer s.Close()
	l, err = net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := sink.waitConns(t, 1)
	peer.Close()
	s.Drop(c) // the port saw EOF
	peer2, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer2.Close()
	sink.waitConns(t, 2)
	// Without reconnect=, a missing peer is an error at start.
	bad := NewSocket(SocketConfig{ID: "n", Host: "127.0.0.1", Port: 1})
	if err := bad.Start(loop, newRecSink()); err == nil {
		t.Errorf("client to a closed port without reconnect: Start = nil; want an error")
	}
}

// startPipe makes FIFOs base.in and base.out and starts a pipe
// backend on them; it returns the connection.
func startPipe(t *testing.T, base string) Conn {
	t.Helper()
	for _, suffix := range []string{".in", ".out"} {
		if err := unix.Mkfifo(base+suffix, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sink := newRecSink()
	p := NewPipe("p", base)
	if err := p.Start(startLoop(t), sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return sink.waitConns(t, 1)
}

func TestPipeNoReaderNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "p")
	c := startPipe(t, base)
	if fdsOf(c).r == fdsOf(c).w {
		t.Fatalf("pipe with P.in and P.out gave one fd for both ways")
	}
	// No reader: writes fill the FIFO and then say EAGAIN, never block.
	chunk := bytes.Repeat([]byte("x"), 4096)
	written := 0
	for i := 0; i < 1000; i++ {
		n, err := unix.Write(fdsOf(c).w, chunk)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatalf("write with no reader: %v", err)
		}
		written += n
	}
	if written == 0 || written >= 1000*4096 {
		t.Fatalf("wrote %d bytes with no reader; want the FIFO to fill and say EAGAIN", written)
	}
	// A late reader gets every byte.
	r, err := os.OpenFile(base+".out", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, written)
	if _, err := readFull(r, got); err != nil || !bytes.Equal(got, bytes.Repeat([]byte("x"), written)) {
		t.Errorf("late reader got %d bytes, %v; want %d", len(got), err, written)
	}
	// And a single FIFO P serves both ways when P.in/P.out are absent.
	single := filepath.Join(dir, "s")
	unix.Mkfifo(single, 0o600)
	sink2 := newRecSink()
	p2 := NewPipe("s", single)
	if err := p2.Start(nil, sink2); err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if c2 := sink2.waitConns(t, 1); fdsOf(c2).r != fdsOf(c2).w {
		t.Errorf("pipe with only P: R=%d W=%d; want one fd", fdsOf(c2).r, fdsOf(c2).w)
	}
	if err := NewPipe("m", filepath.Join(dir, "missing")).Start(nil, newRecSink()); err == nil {
		t.Errorf("pipe to a missing path: Start = nil; want an error")
	}
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := f.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestPtyAttachAndLeave(t *testing.T) {
	sink := newRecSink()
	p := NewPty("pty0")
	if err := p.Start(startLoop(t), sink); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := os.Stat(p.Path()); err != nil {
		t.Fatalf("slave %s: %v", p.Path(), err)
	}
	time.Sleep(3 * ptyPoll)
	if n := len(sink.conns); n != 0 {
		t.Fatalf("%d connections before anyone opened the slave; want 0", n)
	}
	slave, err := os.OpenFile(p.Path(), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := sink.waitConns(t, 1)
	unix.Write(fdsOf(c).w, []byte("to peer"))
	buf := make([]byte, 7)
	if _, err := readFull(slave, buf); err != nil || string(buf) != "to peer" {
		t.Errorf("slave read %q, %v; want %q (raw, unchanged)", buf, err, "to peer")
	}
	slave.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sink.mu.Lock()
		downs := sink.downs
		sink.mu.Unlock()
		if downs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no disconnect after the slave closed")
		}
		time.Sleep(time.Millisecond)
	}
	p.Drop(c)
	slave2, err := os.OpenFile(p.Path(), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave2.Close()
	sink.waitConns(t, 2)
}

func TestRingbufKeepsNewest(t *testing.T) {
	r := NewRingbuf("r", 8)
	r.Write([]byte("0123456789"))
	r.Write([]byte("ab"))
	got, dropped := r.Contents()
	if string(got) != "456789ab" || dropped != 4 {
		t.Errorf("Contents() = %q, %d dropped; want %q, 4", got, dropped, "456789ab")
	}
}

// TestRingbufRead: Read consumes the oldest bytes, across the ring's
// wrap, and an empty ring reads as empty.
func TestRingbufRead(t *testing.T) {
	r := NewRingbuf("r", 8)
	r.Write([]byte("012345"))
	r.Write([]byte("6789ab")) // holds 456789ab, wrapped round the end
	for _, tt := range []struct {
		n    int
		want string
	}{{3, "456"}, {0, ""}, {4, "789a"}, {10, "b"}, {5, ""}} {
		if got := r.Read(tt.n); string(got) != tt.want || got == nil {
			t.Errorf("Read(%d) = %q; want %q (non-nil)", tt.n, got, tt.want)
		}
	}
	r.Write([]byte("xyz"))
	if got, _ := r.Contents(); string(got) != "xyz" {
		t.Errorf("after reads and a write, Contents() = %q; want %q", got, "xyz")
	}
}

func TestFileAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	os.WriteFile(path, []byte("old\n"), 0o644)
	for _, tt := range []struct {
		appendMode bool
		want       string
	}{{true, "old\nnew\n"}, {false, "new\n"}} {
		os.WriteFile(path, []byte("old\n"), 0o644)
		sink := newRecSink()
		f := NewFile("f", path, "", tt.appendMode)
		if err := f.Start(nil, sink); err != nil {
			t.Fatal(err)
		}
		unix.Write(fdsOf(sink.waitConns(t, 1)).w, []byte("new\n"))
		f.Close()
		if b, _ := os.ReadFile(path); string(b) != tt.want {
			t.Errorf("append=%v: file = %q; want %q", tt.appendMode, b, tt.want)
		}
	}
}
