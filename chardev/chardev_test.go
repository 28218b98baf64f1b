package chardev

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		in, want string
		quits    int
	}{
		{"plain", "plain", 0},
		{"a\x01xb", "ab", 1},
		{"\x01\x01", "\x01", 0},
		{"\x01q", "q", 0},
	}
	for _, tt := range tests {
		quits := 0
		e := &Escape{OnQuit: func() { quits++ }}
		got := e.Filter([]byte(tt.in))
		if string(got) != tt.want || quits != tt.quits {
			t.Errorf("Filter(%q) = %q, %d quits; want %q, %d", tt.in, got, quits, tt.want, tt.quits)
		}
	}
	// The prefix may arrive in one read and its key in the next.
	quits := 0
	e := &Escape{OnQuit: func() { quits++ }}
	e.Filter([]byte("\x01"))
	e.Filter([]byte("x"))
	if quits != 1 {
		t.Errorf("split Ctrl-A x: %d quits; want 1", quits)
	}
}

// slowWriter blocks every write until released.
type slowWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	release chan struct{}
}

func (w *slowWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestOutputRingNeverBlocks(t *testing.T) {
	w := &slowWriter{release: make(chan struct{})}
	r := NewOutputRing(w, 8)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			r.Write([]byte("0123456789"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked behind a stalled host writer")
	}
	close(w.release)
	r.Close()
	if r.Dropped() == 0 {
		t.Errorf("Dropped() = 0; want the overflow counted")
	}
	// What survives is the newest data, in order.
	w.mu.Lock()
	got := w.buf.String()
	w.mu.Unlock()
	if len(got) == 0 || len(got) > 8+10 || !bytes.HasSuffix([]byte("0123456789"), []byte(got[len(got)-min(len(got), 8):])) {
		t.Errorf("surviving output %q; want the newest bytes of the stream", got)
	}
}

func TestOutputRingDeliversAll(t *testing.T) {
	var buf bytes.Buffer
	r := NewOutputRing(&buf, 1<<16)
	want := bytes.Repeat([]byte("line of console output\n"), 1000)
	for i := 0; i < len(want); i += 7 {
		r.Write(want[i:min(i+7, len(want))])
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) || r.Dropped() != 0 {
		t.Errorf("delivered %d bytes (dropped %d); want all %d in order", buf.Len(), r.Dropped(), len(want))
	}
}

// fifoReceiver is a bounded device like the UART's FIFO.
type fifoReceiver struct {
	mu    sync.Mutex
	cap   int
	held  []byte
	got   []byte
	space func()
}

func (f *fifoReceiver) Room() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cap - len(f.held)
}

func (f *fifoReceiver) Receive(b []byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := min(len(b), f.cap-len(f.held))
	f.held = append(f.held, b[:n]...)
	return n
}

func (f *fifoReceiver) OnSpace(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.space = fn
}

// drain plays the guest: it empties the FIFO and signals space.
func (f *fifoReceiver) drain() {
	f.mu.Lock()
	f.got = append(f.got, f.held...)
	f.held = f.held[:0]
	fn := f.space
	f.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// attachInput feeds c into dst as a front end does: an Input, and a
// watch on c that tells it of readiness.
func attachInput(t *testing.T, loop *Loop, c Conn, dst Receiver, onEnd func(error)) *Input {
	t.Helper()
	in := NewInput(loop, c, dst, onEnd)
	w, err := c.Watch(loop, func(r Ready) {
		if r&Readable != 0 {
			in.Readable()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loop.Post(w.Remove) })
	return in
}

func TestInputBackpressureLosesNothing(t *testing.T) {
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	go loop.Run()
	defer loop.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	f := &fifoReceiver{cap: 16}
	attachInput(t, loop, NewFDConn(p[0], -1), f, nil)
	want := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 400)
	go func() {
		for off := 0; off < len(want); {
			n, err := unix.Write(p[1], want[off:])
			if err == unix.EAGAIN {
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				return
			}
			off += n
		}
		unix.Close(p[1])
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		f.drain()
		f.mu.Lock()
		n := len(f.got)
		f.mu.Unlock()
		if n >= len(want) {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	if !bytes.Equal(f.got, want) {
		t.Errorf("device received %d bytes; want all %d in order", len(f.got), len(want))
	}
}

func TestLoopNotPollable(t *testing.T) {
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	f, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(f)
	if _, err := loop.Add(f, unix.EPOLLIN, func(uint32) {}); !errors.Is(err, ErrNotPollable) {
		t.Errorf("Add(/dev/null) = %v; want ErrNotPollable", err)
	}
}

// TestLoopPost: posted functions run on the loop goroutine in order, and
// nothing is accepted once the loop is closed.
func TestLoopPost(t *testing.T) {
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() { loop.Run(); close(ended) }()
	var got []int // touched only by posted functions, then read after done
	done := make(chan struct{})
	for i := range 100 {
		if !loop.Post(func() { got = append(got, i) }) {
			t.Fatalf("Post(%d) = false on a running loop; want true", i)
		}
	}
	loop.Post(func() { close(done) })
	<-done
	for i, v := range got {
		if v != i {
			t.Fatalf("posted function %d ran as number %d; want in order", v, i)
		}
	}
	if len(got) != 100 {
		t.Errorf("%d posted functions ran; want 100", len(got))
	}
	loop.Close()
	<-ended
	if loop.Post(func() { t.Error("a function posted after Close ran") }) {
		t.Error("Post after Close = true; want false")
	}
}

// TestLoopReusedFD: a removed registration's handler is never called,
// even when the kernel gives its fd number to a new registration.
func TestLoopReusedFD(t *testing.T) {
	loop := startLoop(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	old := make(chan struct{}, 100)
	w, err := loop.Add(p[0], unix.EPOLLIN, func(uint32) { old <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	// Remove and close on the loop goroutine, then reuse the number.
	removed := make(chan struct{})
	loop.Post(func() { w.Remove(); unix.Close(p[0]); unix.Close(p[1]); close(removed) })
	<-removed
	for len(old) > 0 {
		<-old
	}
	var q [2]int
	if err := unix.Pipe2(q[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(q[0])
	defer unix.Close(q[1])
	fresh := make(chan struct{}, 1)
	if _, err := loop.Add(q[0], unix.EPOLLIN, func(uint32) {
		var b [16]byte
		unix.Read(q[0], b[:])
		select {
		case fresh <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	unix.Write(q[1], []byte("x"))
	<-fresh
	if len(old) != 0 {
		t.Errorf("the removed registration's handler ran for fd %d's new owner (reused: %v)", p[0], q[0] == p[0])
	}
	if err := w.Modify(unix.EPOLLIN); err == nil {
		t.Error("Modify of a removed watch = nil; want an error")
	}
}

// racyReceiver is a fifoReceiver whose next Room answers 0 while the
// guest empties the FIFO in that same instant: the space callback runs
// while the fd is still armed, before the loop disarms it.
type racyReceiver struct {
	*fifoReceiver
	raceOnce atomic.Bool
}

func (r *racyReceiver) Room() int {
	if r.raceOnce.CompareAndSwap(true, false) {
		r.drain()
		return 0
	}
	return r.fifoReceiver.Room()
}

// TestInputSpaceDuringDisarm: room the guest makes between the loop's
// look at a full FIFO and its disarming of the fd still wakes the input.
// (Once, typed input stopped for good after 17 bytes.)
func TestInputSpaceDuringDisarm(t *testing.T) {
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	go loop.Run()
	defer loop.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	r := &racyReceiver{fifoReceiver: &fifoReceiver{cap: 16}}
	r.raceOnce.Store(true)
	attachInput(t, loop, NewFDConn(p[0], -1), r, nil)
	if _, err := unix.Write(p[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		n := len(r.held)
		r.mu.Unlock()
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("input byte not received 5 s after the FIFO made room: the fd stayed disarmed")
		}
	}
}

// countingReceiver counts the input's looks at the FIFO's room.
type countingReceiver struct {
	*fifoReceiver
	looks atomic.Int64
}

func (c *countingReceiver) Room() int {
	c.looks.Add(1)
	return c.fifoReceiver.Room()
}

// TestInputPeerLeavesBehindFullFIFO: a peer sends more than the FIFO
// holds and hangs up while the guest reads nothing. The loop must not
// spin on the hang-up (epoll reports it whatever was asked for); when
// the guest reads, every byte arrives, and only then does the input end
// (onEnd, once), so a server may take its next client.
func TestInputPeerLeavesBehindFullFIFO(t *testing.T) {
	loop, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	go loop.Run()
	defer loop.Close()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	r := &countingReceiver{fifoReceiver: &fifoReceiver{cap: 16}}
	ended := make(chan struct{}, 2)
	attachInput(t, loop, NewStreamConn(sp[0]), r, func(error) { ended <- struct{}{} })
	want := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCD") // 40 bytes
	if _, err := unix.Write(sp[1], want); err != nil {
		t.Fatal(err)
	}
	unix.Close(sp[1])
	waitFor(t, "the FIFO to fill", func() bool { return r.fifoReceiver.Room() == 0 })
	before := r.looks.Load()
	time.Sleep(200 * time.Millisecond) // a window to catch a spinning loop in
	if n := r.looks.Load() - before; n > 5 {
		t.Fatalf("the loop looked at a full FIFO %d times in 200 ms after the peer hung up: it spins", n)
	}
	select {
	case <-ended:
		t.Fatal("input ended while 24 of the peer's bytes were still unread")
	default:
	}
	for len(r.gotNow()) < len(want) {
		r.drain() // the guest reads what the FIFO holds
		waitFor(t, "input after the guest made room", func() bool {
			return r.fifoReceiver.Room() < 16 || len(r.gotNow()) == len(want)
		})
	}
	if got := r.gotNow(); !bytes.Equal(got, want) {
		t.Fatalf("guest got %q; want %q", got, want)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("input did not end after the peer's last byte")
	}
	select {
	case <-ended:
		t.Fatal("onEnd ran twice")
	case <-time.After(50 * time.Millisecond):
	}
}

func (f *fifoReceiver) gotNow() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.got...)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestLoopDo: Do runs f on the loop goroutine and waits for it; from the
// loop itself it runs f at once (no deadlock); once the loop has stopped
// it reports false and f never runs, also for a Do already waiting.
func TestLoopDo(t *testing.T) {
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	// Waiting before Run starts: Close ends the wait.
	early := make(chan bool)
	ran := false
	go func() { early <- l.Do(func() { ran = true }) }()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	if ok := <-early; ok || ran {
		t.Errorf("Do waiting on a loop closed before Run = %v, ran %v; want false, not run", ok, ran)
	}

	l, err = NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error)
	go func() { runDone <- l.Run() }()
	var onLoop, nested bool
	if ok := l.Do(func() {
		onLoop = l.OnLoop()
		l.Do(func() { nested = l.OnLoop() })
	}); !ok || !onLoop || !nested {
		t.Errorf("Do = %v, on the loop %v, nested Do on the loop %v; want all true", ok, onLoop, nested)
	}
	if l.OnLoop() {
		t.Errorf("OnLoop() on the test goroutine = true")
	}
	l.Close()
	<-runDone
	if ok := l.Do(func() { t.Errorf("f ran after Close") }); ok {
		t.Errorf("Do after Close = true; want false")
	}
}
