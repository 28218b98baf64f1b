package virtioserial

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// drainRig is a device with a console (port 0) and a serial port (1),
// both connected and open, the way Linux leaves them.
func drainRig(t *testing.T) (r *rig, hosts map[uint32]int) {
	t.Helper()
	r = newRig(t, 2, PortConfig{Nr: 0, Console: true, Name: "con"}, PortConfig{Nr: 1, Name: "p"})
	hosts = map[uint32]int{0: r.be["con"].connect(t), 1: r.be["p"].connect(t)}
	for _, fd := range hosts {
		t.Cleanup(func() { unix.Close(fd) })
	}
	r.handshake(0, 1)
	r.open(0)
	r.open(1)
	r.expectControl(controlMsg{id: 0, event: eventConsolePort, value: 1})
	// PORT_OPEN went through the control queue: both ports are ready
	// once the device has consumed it.
	r.waitFor("ports open", func() bool { return r.stats(0).GuestOpen && r.stats(1).GuestOpen })
	return r, hosts
}

// TestDrainWritesWhatTheGuestLeft: TX buffers the guest published but
// never kicked for, on a console and on a serial port, go to the host
// when the VM ends (Drain) or when the driver resets the device (Linux
// does on its way to a power-off), and the device lets go of guest
// memory afterwards.
func TestDrainWritesWhatTheGuestLeft(t *testing.T) {
	tests := []struct {
		name string
		id   uint32
		end  func(*rig) uint64 // ends the device's life; returns bytes left
	}{
		{"console drain", 0, func(r *rig) uint64 { return r.dev.Drain(time.Now().Add(10 * time.Second)) }},
		{"serial drain", 1, func(r *rig) uint64 { return r.dev.Drain(time.Now().Add(10 * time.Second)) }},
		{"console reset", 0, func(r *rig) uint64 { r.dev.Reset(); return 0 }},
		{"serial reset", 1, func(r *rig) uint64 { r.dev.Reset(); return 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, hosts := drainRig(t)
			data := pattern(0, 96<<10)
			if n := r.put(tt.id, data); n != len(data) {
				t.Fatalf("put(%d bytes) = %d; want all", len(data), n)
			}
			if left := tt.end(r); left != 0 {
				t.Errorf("%s left %d bytes; want 0", tt.name, left)
			}
			// The host side is a socketpair with room for all of it:
			// everything must already be there.
			got := make([]byte, 2*len(data))
			n, err := unix.Read(hosts[tt.id], got)
			if err != nil {
				t.Fatalf("host read after %s: %v; want %d bytes waiting", tt.name, err, len(data))
			}
			if !bytes.Equal(got[:n], data) {
				t.Errorf("host got %d bytes (%d match); want the %d the guest put", n, commonPrefix(got[:n], data), len(data))
			}
			r.dev.mu.Lock()
			active := r.dev.active
			r.dev.mu.Unlock()
			if active {
				t.Errorf("device still active after %s; it must not touch guest memory any more", tt.name)
			}
		})
	}
}

// TestDrainWaitsForAReadingPeer: more than the socket buffer holds is
// left in the serial port's queue; Drain keeps writing as the peer
// reads, until all of it is out.
func TestDrainWaitsForAReadingPeer(t *testing.T) {
	r, hosts := drainRig(t)
	data := pattern(0, 2<<20)
	n := r.put(1, data)
	if n <= 1<<20 {
		t.Fatalf("put = %d bytes; want more than a socket buffer", n)
	}
	type readResult struct {
		got []byte
		err error
	}
	done := make(chan readResult, 1)
	go func() {
		var got []byte
		buf := make([]byte, 64<<10)
		pfd := []unix.PollFd{{Fd: int32(hosts[1]), Events: unix.POLLIN}}
		for len(got) < n {
			if _, err := unix.Poll(pfd, 10000); err != nil && err != unix.EINTR {
				done <- readResult{got, err}
				return
			}
			k, err := unix.Read(hosts[1], buf)
			if k > 0 {
				got = append(got, buf[:k]...)
			} else if err != unix.EAGAIN {
				done <- readResult{got, err}
				return
			}
		}
		done <- readResult{got, nil}
	}()
	if left := r.dev.Drain(time.Now().Add(30 * time.Second)); left != 0 {
		t.Errorf("Drain left %d bytes with a reading peer; want 0", left)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("host read: %v", res.err)
	}
	if !bytes.Equal(res.got, data[:n]) {
		t.Errorf("host got %d bytes (%d match); want %d", len(res.got), commonPrefix(res.got, data[:n]), n)
	}
}

// TestDrainGivesUpOnAStalledPeer: a peer that never reads cannot keep
// Drain (and so a powered-off VM) alive past its deadline; what it did
// not take is reported and dropped.
func TestDrainGivesUpOnAStalledPeer(t *testing.T) {
	r, _ := drainRig(t)
	n := r.put(1, pattern(0, 2<<20))
	left := r.dev.Drain(time.Now().Add(50 * time.Millisecond))
	if left == 0 || left > uint64(n) {
		t.Errorf("Drain with a stalled peer left %d bytes; want some of the %d put", left, n)
	}
	if s := r.stats(1); s.Dropped == 0 {
		t.Errorf("stats after giving up = %+v; want the rest counted as dropped", s)
	}
}
