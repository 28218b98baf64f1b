package machine

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"vmm/kvm"
)

// TestPauseHoldsGuest: a paused guest executes nothing — input that
// arrives while it is paused is not read until it resumes — and it then
// runs on to its end. The guest polls COM1 for 4 bytes (a vCPU exit per
// poll), so a vCPU left running would print within microseconds.
func TestPauseHoldsGuest(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	var out lockedBuffer
	m, err := New(Config{MemSize: 64 << 20, CPUs: 2, Kernel: testGuest(t),
		Cmdline: "serial 4; exit 7", SerialOut: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exited := make(chan Exit, 1)
	go func() { exited <- m.Run() }()
	waitFor(t, "the guest's hello", func() bool { return strings.Contains(out.String(), "guest: hello") })

	if !m.Pause() {
		t.Fatal("Pause() = false on a running VM; want true")
	}
	if m.Pause() {
		t.Error("second Pause() = true; want false (already paused)")
	}
	if !m.Paused() {
		t.Error("Paused() = false after Pause")
	}
	m.UART().Receive([]byte("abcd"))
	time.Sleep(300 * time.Millisecond) // a running guest would print at once; a paused one must not
	if s := out.String(); strings.Contains(s, "serial got") {
		t.Fatalf("the paused guest read its input:\n%s", s)
	}
	for range 3 { // pause and resume again while it runs: nothing lost
		if !m.Resume() {
			t.Fatal("Resume() = false on a paused VM; want true")
		}
		m.Pause()
	}
	m.Resume()
	if m.Resume() {
		t.Error("Resume() on a running VM = true; want false")
	}
	select {
	case e := <-exited:
		if e.Status != 7 || e.Err != nil {
			t.Errorf("exit = %+v; want status 7", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the guest did not end after Resume; output:\n%s", out.String())
	}
	if s := out.String(); !strings.Contains(s, `guest: serial got "abcd"`) {
		t.Errorf("output after resume:\n%s\nwant the input read once resumed", s)
	}
}

// TestPauseThenStop: a VM stopped while paused ends (its held vCPUs are
// released), and Pause on an ended VM returns.
func TestPauseThenStop(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	m, err := New(Config{MemSize: 64 << 20, CPUs: 1, Kernel: testGuest(t), Cmdline: "serial 4"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exited := make(chan Exit, 1)
	go func() { exited <- m.Run() }()
	m.Pause()
	m.Stop("test")
	select {
	case e := <-exited:
		if e.Reason != "test" {
			t.Errorf("exit = %+v; want reason test", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a paused VM did not end on Stop")
	}
	m.WaitStopped()
	m.Resume()
	m.Pause() // must not wait for vCPUs that are gone
}

// lockedBuffer collects COM1 output written by a vCPU thread.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
