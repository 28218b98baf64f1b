package virtioserial

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// openEvents records OnGuestOpen calls.
type openEvents struct {
	mu     sync.Mutex
	events []string // guarded by mu
}

func (e *openEvents) record(id string, open bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, fmt.Sprintf("%s:%v", id, open))
}

func (e *openEvents) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.events...)
}

func (r *rig) watchOpen() *openEvents {
	ev := &openEvents{}
	r.dev.mu.Lock()
	r.dev.onGuestOpen = ev.record
	r.dev.mu.Unlock()
	return ev
}

// TestHotplugAddRemove: a port added while the driver runs gets
// PORT_ADD at once and carries data both ways; unplugged with guest
// data queued, the data is discarded and counted, its TX buffers come
// back to the guest, the guest gets PORT_REMOVE, and the host
// connection is left to the caller.
func TestHotplugAddRemove(t *testing.T) {
	r := newRig(t, 4, PortConfig{Nr: -1, Name: "a", ID: "pa"})
	ev := r.watchOpen()
	r.handshake(1)

	b := newPairBackend("b")
	p, err := r.dev.AddPort(PortConfig{Nr: -1, Name: "b", Backend: b, ID: "pb"})
	if err != nil {
		t.Fatalf("AddPort(b) = %v", err)
	}
	b.Start(r.loop, p)
	r.expectControl(controlMsg{id: 2, event: eventPortAdd, value: 1})
	host := b.connect(t)
	defer unix.Close(host)
	r.fillRX(2)
	r.send(2, eventPortReady, 1)
	r.expectControl(controlMsg{id: 2, event: eventPortName, value: 1, payload: []byte("b")},
		controlMsg{id: 2, event: eventPortOpen, value: 1})
	r.open(2)
	r.write(2, []byte("to host"))
	if got := readAll(t, host, 7); string(got) != "to host" {
		t.Errorf("host got %q; want %q", got, "to host")
	}
	unix.Write(host, []byte("to guest"))
	var got []byte
	r.waitFor("data in the guest", func() bool { got = append(got, r.read(2)...); return len(got) >= 8 })
	if string(got) != "to guest" {
		t.Errorf("guest got %q; want %q", got, "to guest")
	}

	// The host stops reading; the guest queues more than the socket
	// takes, then the port goes.
	queued := 0
	for range 20 {
		queued += r.write(2, pattern(queued, 32<<10))
	}
	r.waitFor("port b throttled", func() bool { return r.stats(2).Throttled })
	first := r.stats(2)
	r.waitFor("throttled time to grow", func() bool { return r.stats(2).ThrottledTime > first.ThrottledTime })
	if first.Throttles == 0 || first.ThrottledTime <= 0 {
		t.Errorf("throttled port stats = %+v; want a throttle counted and its time", first)
	}
	st, ok := r.dev.UnplugPort(2)
	if !ok {
		t.Fatal("UnplugPort(2) = false")
	}
	r.expectControl(controlMsg{id: 2, event: eventPortRemove, value: 1})
	sent := 0
	for {
		k, err := unix.Read(host, make([]byte, 1<<20))
		if k <= 0 || err != nil {
			break
		}
		sent += k
	}
	if st.Dropped == 0 || int(st.BytesOut)-7+int(st.Dropped) != queued {
		t.Errorf("after unplug: %d bytes out (7 before), %d dropped; want the %d queued accounted for", st.BytesOut, st.Dropped, queued)
	}
	if sent != int(st.BytesOut)-7 {
		t.Errorf("host read %d bytes; the device says it wrote %d", sent, int(st.BytesOut)-7)
	}
	if n := len(r.reap(rxQueueIndex(2) + 1)); n == 0 {
		t.Errorf("no TX buffers came back to the guest on unplug")
	}
	if _, ok := r.dev.UnplugPort(2); ok {
		t.Errorf("UnplugPort(2) twice = true")
	}
	// The connection is the caller's: still open.
	if _, err := unix.Write(host, []byte("x")); err != nil {
		t.Errorf("host connection after unplug: %v; want it left open", err)
	}
	if want := []string{"pb:true", "pb:false"}; fmt.Sprint(ev.list()) != fmt.Sprint(want) {
		t.Errorf("guest-open events = %v; want %v", ev.list(), want)
	}
	// The number is free again.
	if _, err := r.dev.AddPort(PortConfig{Nr: 2, Name: "b2", Backend: newPairBackend("b2")}); err != nil {
		t.Errorf("AddPort at the freed number: %v", err)
	}
}

// TestHotplugBeforeDriver: a port added before DEVICE_READY is announced
// with the others, once.
func TestHotplugBeforeDriver(t *testing.T) {
	r := newRig(t, 4, PortConfig{Nr: -1, Name: "a"})
	if _, err := r.dev.AddPort(PortConfig{Nr: 3, Name: "late", Backend: newPairBackend("late")}); err != nil {
		t.Fatal(err)
	}
	r.handshake(1, 3)
	n := 0
	for _, m := range r.ctrl {
		if m.event == eventPortAdd && m.id == 3 {
			n++
		}
	}
	if n != 1 {
		t.Errorf("PORT_ADD for port 3 sent %d times; want 1", n)
	}
}

// TestHotplugErrors: QEMU's refusals.
func TestHotplugErrors(t *testing.T) {
	r := newRig(t, 4, PortConfig{Nr: -1, Name: "a"}, PortConfig{Nr: 3, Name: "c"})
	be := newPairBackend("x")
	tests := []struct {
		pc   PortConfig
		want string
	}{
		{PortConfig{Nr: -1, Name: "a", Backend: be}, "A port already exists by name a"},
		{PortConfig{Nr: 1, Backend: be}, "A port already exists at id 1"},
		{PortConfig{Nr: 0, Backend: be}, "Port number 0 on virtio-serial devices reserved for virtconsole"},
		{PortConfig{Nr: 4, Backend: be}, "Out-of-range port id specified, max. allowed: 3"},
		{PortConfig{Nr: -1}, "no chardev"},
	}
	for _, tt := range tests {
		if _, err := r.dev.AddPort(tt.pc); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("AddPort(%+v) = %v; want %q", tt.pc, err, tt.want)
		}
	}
	if _, err := r.dev.AddPort(PortConfig{Nr: -1, Backend: be}); err != nil {
		t.Fatalf("AddPort into the last free number: %v", err)
	}
	if _, err := r.dev.AddPort(PortConfig{Nr: -1, Backend: newPairBackend("y")}); err == nil || !strings.Contains(err.Error(), "Maximum port limit") {
		t.Errorf("AddPort on a full device = %v; want the maximum port limit error", err)
	}
	if n := len(r.dev.Stats()); n != 3 {
		t.Errorf("%d ports after refusals; want 3", n)
	}
}

// TestGuestOpenEventsInOrder: 100 quick open/close cycles give 200
// events in order; a port without an id gives none; a reset closes.
func TestGuestOpenEventsInOrder(t *testing.T) {
	r := newRig(t, 3, PortConfig{Nr: -1, Name: "a", ID: "pa"}, PortConfig{Nr: -1, Name: "noid"})
	ev := r.watchOpen()
	r.handshake(1, 2)
	var want []string
	for i := range 100 {
		r.open(1)
		r.close(1)
		r.open(2)
		r.close(2)
		want = append(want, "pa:true", "pa:false")
		// The mock's control queue holds 64 messages: let the device
		// catch up now and then.
		r.waitFor("events so far", func() bool { return len(ev.list()) >= 2*(i+1)-8 })
	}
	r.open(1)
	r.open(1) // a repeat is no change
	want = append(want, "pa:true")
	r.waitFor("201 events", func() bool { return len(ev.list()) >= 201 })
	r.dev.Reset()
	want = append(want, "pa:false")
	if got := ev.list(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events (%d) = %v\nwant (%d) %v", len(got), got, len(want), want)
	}
}
