package chardev

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEscapeMux: input through the Ctrl-A mux reaches the front end
// without the escape keys (Ctrl-A Ctrl-A is one Ctrl-A), Ctrl-A x calls
// OnQuit, everything else passes in order — including more than the
// pipe holds at once (stdin waits while the front end does not read) —
// and end of input reaches the front end after the data.
func TestEscapeMux(t *testing.T) {
	loop := startLoop(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	in, feed := p[0], p[1]
	defer unix.Close(in)
	var quits atomic.Int32
	m, err := newEscapeMux(loop, in, &Escape{OnQuit: func() { quits.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()

	big := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB: more than a pipe holds
	typed := append([]byte("a\x01xb\x01\x01c"), big...)
	want := append([]byte("ab\x01c"), big...)
	go func() {
		unix.SetNonblock(feed, false)
		for b := typed; len(b) > 0; {
			n, err := unix.Write(feed, b)
			if err != nil {
				break
			}
			b = b[n:]
		}
		unix.Close(feed)
	}()
	var got []byte
	buf := make([]byte, 8192)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(m.r), Events: unix.POLLIN}}
		unix.Poll(fds, 100)
		n, err := unix.Read(m.r, buf)
		if n == 0 && err == nil {
			break // end of input
		}
		if n > 0 {
			got = append(got, buf[:n]...)
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("front end got %d bytes (starts %q); want %d bytes starting %q", len(got), got[:min(8, len(got))], len(want), want[:8])
	}
	if quits.Load() != 1 {
		t.Errorf("OnQuit called %d times; want 1", quits.Load())
	}
}
