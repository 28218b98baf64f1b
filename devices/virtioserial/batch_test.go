package virtioserial

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Records: over a SOCK_SEQPACKET pair every writev the device makes is
// one record the host receives, and a record read with readv lands
// across the buffers given or is cut short: so the host side sees how
// the device batches.

// recvRecord waits for one record from fd.
func recvRecord(t *testing.T, fd int) []byte {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			return buf[:n]
		}
		if err != nil && err != unix.EAGAIN {
			t.Fatalf("host read: %v", err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatal("no record from the device")
	return nil
}

// TestBatchedWritev: TX chains the guest queued before one kick leave in
// one writev (one record), in order, and are all returned used.
func TestBatchedWritev(t *testing.T) {
	r := newRig(t, 2, PortConfig{Nr: -1, Name: "p"})
	// Chains go in once the port is open: a flush that PORT_OPEN starts
	// could otherwise take the first chains while the rest are added.
	host := r.openPort(t, "p", 1, unix.SOCK_SEQPACKET)
	qi := rxQueueIndex(1) + 1
	want := pattern(0, 8*1000)
	for i := 0; i < 8; i++ {
		if !r.add(qi, want[i*1000:(i+1)*1000], 0) {
			t.Fatalf("no free TX descriptor for chain %d", i)
		}
	}
	r.kick(qi)
	if got := recvRecord(t, host); !bytes.Equal(got, want) {
		t.Fatalf("first record = %d bytes (equal prefix %d); want all 8 chains, %d bytes, in one writev", len(got), commonPrefix(got, want), len(want))
	}
	var used int
	r.waitFor("8 TX chains used", func() bool { used += len(r.reap(qi)); return used == 8 })
	if s := r.stats(1); s.BytesOut != uint64(len(want)) || s.BytesHeld != 0 {
		t.Errorf("stats = %+v; want %d bytes out, none held", s, len(want))
	}
}

// TestBatchedReadv: one host record larger than an RX buffer fills
// several of the guest's buffers in one readv, in order (one readv per
// 4 KiB buffer would cut the record short).
func TestBatchedReadv(t *testing.T) {
	r := newRig(t, 2, PortConfig{Nr: -1, Name: "p"})
	// The record goes once the port is open: a readv racing the write
	// could take a record before FIONREAD counted it, into one buffer,
	// and SOCK_SEQPACKET cuts a record short to the buffers given.
	host := r.openPort(t, "p", 1, unix.SOCK_SEQPACKET)
	want := pattern(0, 5*rxBufSize+123)
	if _, err := unix.Write(host, want); err != nil {
		t.Fatal(err)
	}
	var got []byte
	r.waitFor("the record in the guest", func() bool {
		got = append(got, r.read(1)...)
		return len(got) >= len(want)
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("guest got %d bytes (equal prefix %d); want %d", len(got), commonPrefix(got, want), len(want))
	}
}

// TestShortReadThenHangUp: a peer that writes less than the guest's
// buffers hold and leaves: its bytes reach the guest and its hang-up is
// seen (readiness is edge-triggered: a batch that stopped at the short
// read would never hear of the end).
func TestShortReadThenHangUp(t *testing.T) {
	r := newRig(t, 2, PortConfig{Nr: -1, Name: "p"})
	host := r.be["p"].connect(t)
	r.handshake(1)
	// Both the data and the hang-up are reported while the guest has the
	// port closed; opening it starts the one read that must find both.
	want := pattern(0, 100)
	if _, err := unix.Write(host, want); err != nil {
		t.Fatal(err)
	}
	unix.Close(host)
	time.Sleep(20 * time.Millisecond)
	r.open(1)
	// The guest takes what arrives without reposting buffers (no kick
	// that would make the device look again).
	var got []byte
	r.waitFor("the peer's bytes in the guest and its hang-up seen", func() bool {
		for _, u := range r.reap(rxQueueIndex(1)) {
			got = append(got, u.data[:u.len]...)
		}
		return len(got) >= len(want) && !r.stats(1).HostConnected
	})
	if !bytes.Equal(got, want) {
		t.Errorf("guest got %q; want %q", got, want)
	}
}
