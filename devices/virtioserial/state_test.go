package virtioserial

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"

	"vmm/devices/virtio"
)

// TestSnapshotHeldData: a port whose host reader stopped holds the
// guest's writes (a chain and its offset); the device state is saved,
// the device replaced by a new one restored from it on the same rings
// (what a restore from a snapshot file does), and the new host peer
// gets exactly the bytes after those the old peer's socket took:
// nothing lost, nothing twice. The guest learns the new host side
// (PORT_OPEN 0 at the restore, 1 when the peer comes).
func TestSnapshotHeldData(t *testing.T) {
	r := newRig(t, 2, PortConfig{Nr: -1, Name: "p"})
	host := r.openPort(t, "p", 1, unix.SOCK_STREAM)
	const total = 2 << 20
	want := pattern(0, total)
	written := r.write(1, want)
	r.waitFor("the port to be throttled", func() bool { return r.stats(1).Throttled })
	before := r.stats(1)
	if before.BytesHeld == 0 {
		t.Fatalf("stats before the save = %+v; want bytes held", before)
	}
	state, err := r.dev.SaveState(func() {})
	if err != nil {
		t.Fatal(err)
	}
	// The old device lets go of the rings and their kicks (frozen, it
	// writes nothing more to the host or the guest).
	r.dev.Reset()
	old := readAll(t, host, int(before.BytesOut))
	if !bytes.Equal(old, want[:len(old)]) || len(old) != int(before.BytesOut) {
		t.Fatalf("old peer got %d bytes (%d written by the device); want the stream's first %d", len(old), before.BytesOut, before.BytesOut)
	}

	be := newPairBackend("p")
	dev, err := New(Config{MaxPorts: 2, Ports: []PortConfig{{Nr: -1, Name: "p", Backend: be}}, Loop: r.loop})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := &virtio.ActivateContext{Mem: r.mem, Features: FeatureMultiport | virtio.FeatureVersion1,
		Queues: r.queues, Notifiers: r.notify, Interrupt: r.irq}
	if err := dev.RestoreState(ctx, state); err != nil {
		t.Fatal(err)
	}
	dev.Thaw()
	r.dev = dev
	if s := r.stats(1); s.HostConnected || !s.Ready || !s.GuestOpen || s.BytesHeld != before.BytesHeld || s.BytesOut != before.BytesOut {
		t.Errorf("restored stats = %+v; want saved %+v, not connected", s, before)
	}
	r.expectControl(controlMsg{id: 1, event: eventPortOpen, value: 0})
	host2 := be.connect(t)
	defer unix.Close(host2)
	r.expectControl(controlMsg{id: 1, event: eventPortOpen, value: 1})
	got := r.pump(1, host2, want, written, len(old))
	if !bytes.Equal(got, want[len(old):]) {
		t.Errorf("new peer got %d bytes (equal prefix %d); want the %d bytes from offset %d on",
			len(got), commonPrefix(got, want[len(old):]), total-len(old), len(old))
	}
}

// TestRestoreStateRefusals: corrupt or mismatched device state is
// refused with an error, never a panic, and leaves the device as it was.
func TestRestoreStateRefusals(t *testing.T) {
	r := newRig(t, 2, PortConfig{Nr: -1, Name: "p"})
	r.handshake(1)
	state, err := r.dev.SaveState(func() {})
	if err != nil {
		t.Fatal(err)
	}
	r.dev.Thaw()
	newDev := func(ports ...PortConfig) *Device {
		for i := range ports {
			ports[i].Backend = newPairBackend(ports[i].Name)
		}
		d, err := New(Config{MaxPorts: 2, Ports: ports, Loop: r.loop})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name  string
		dev   *Device
		state []byte
	}{
		{"other name", newDev(PortConfig{Nr: -1, Name: "q"}), state},
		{"no ports", newDev(), state},
		{"truncated", newDev(PortConfig{Nr: -1, Name: "p"}), state[:len(state)-3]},
		{"trailing", newDev(PortConfig{Nr: -1, Name: "p"}), append(append([]byte(nil), state...), 0)},
		{"version", newDev(PortConfig{Nr: -1, Name: "p"}), append([]byte{9}, state[1:]...)},
	}
	for _, tt := range tests {
		if err := tt.dev.RestoreState(nil, tt.state); err == nil {
			t.Errorf("%s: RestoreState = nil; want an error", tt.name)
		}
	}
	// Every prefix of a valid state is refused, never a panic.
	for n := range state {
		d := newDev(PortConfig{Nr: -1, Name: "p"})
		if err := d.RestoreState(nil, state[:n]); err == nil {
			t.Errorf("RestoreState(%d of %d bytes) = nil; want an error", n, len(state))
		}
	}
}

// FuzzDecodeState: a device state from a snapshot file is refused or
// accepted, never a panic, and what decodes re-encodes within limits.
func FuzzDecodeState(f *testing.F) {
	var e enc
	e.u8(stateVersion)
	e.u32(2)
	e.u8(1)
	e.u8(1)
	e.u8(1)
	e.u64(0)
	e.u32(1)
	e.u32(1)
	e.u16(eventPortOpen)
	e.u16(1)
	e.bytes(nil)
	e.u32(1)
	e.u32(1)
	e.bytes([]byte("p"))
	for range 5 {
		e.u8(1)
	}
	e.u16(3)
	e.u32(10)
	e.u8(0)
	e.u16(0)
	e.bytes([]byte("left"))
	e.bytes(nil)
	for range 5 {
		e.u64(7)
	}
	f.Add(e.b)
	f.Add([]byte{stateVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeState(b)
		if err != nil {
			return
		}
		if len(s.ports) > MaxPorts || len(s.ctrl) > maxPendingControl {
			t.Fatalf("decodeState accepted %d ports, %d control messages", len(s.ports), len(s.ctrl))
		}
	})
}
