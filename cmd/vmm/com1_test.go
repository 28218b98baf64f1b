package main

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vmm/chardev"
)

// fullFIFO is a UART that never has room.
type fullFIFO struct{}

func (fullFIFO) Room() int          { return 0 }
func (fullFIFO) Receive([]byte) int { return 0 }
func (fullFIFO) OnSpace(func())     {}

// TestCOM1WriteGivesUp: at exit, COM1's writer stops waiting for a peer
// that does not read (here a pipe nobody reads, already full) once its
// deadline passes, instead of keeping vmm alive.
func TestCOM1WriteGivesUp(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	buf := make([]byte, 65536)
	for {
		if _, err := unix.Write(p[1], buf); errors.Is(err, unix.EAGAIN) {
			break
		}
	}
	loop, err := chardev.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	go loop.Run()
	defer loop.Close()
	h := newCOM1Host(chardev.NewNull("serial0"), loop)
	h.rx = fullFIFO{}
	h.Connected(chardev.NewFDConn(-1, p[1]))
	h.giveUpAfter(time.Now().Add(200 * time.Millisecond))
	done := make(chan struct{})
	start := time.Now()
	go func() {
		h.Write([]byte("more than the pipe takes"))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Write still waiting 10 s after its 200 ms deadline")
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("Write returned after %v; want it to wait until the deadline", d)
	}
}
