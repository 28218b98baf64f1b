package virtioserial

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStateChangesOnLoop: every change of device and port state runs on
// the event loop goroutine, whoever asks for it: Reset and Activate (a
// vCPU), an emergency write (a vCPU), hotplug (QMP), a backend's
// connection events from another goroutine, a snapshot and Drain (the
// VM's owner).
func TestStateChangesOnLoop(t *testing.T) {
	r := newRig(t, 4, PortConfig{Nr: -1, Console: true, Name: "con"}, PortConfig{Nr: -1, Name: "p"})
	var changes, offLoop atomic.Int64
	r.dev.mu.Lock()
	r.dev.onChange = func() {
		changes.Add(1)
		if !r.loop.OnLoop() {
			offLoop.Add(1)
		}
	}
	r.dev.mu.Unlock()

	host := r.be["p"].connect(t) // Connected from the test goroutine
	defer unix.Close(host)
	r.handshake(0, 1)
	r.open(1)
	r.waitFor("port open", func() bool { return r.stats(1).GuestOpen })
	r.dev.WriteConfig(configEmergWr, []byte{'!', 0, 0, 0})
	b := newPairBackend("hot")
	if _, err := r.dev.AddPort(PortConfig{Nr: 3, Name: "hot", Backend: b}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.dev.UnplugPort(3); !ok {
		t.Fatal("UnplugPort(3) = false")
	}
	state, err := r.dev.SaveState(func() {})
	if err != nil {
		t.Fatal(err)
	}
	r.dev.Thaw()
	if len(state) == 0 {
		t.Fatal("SaveState returned no state")
	}
	r.dev.Reset()
	r.mockDriver = newMockDriver(t, r.dev, FeatureMultiport) // Activate again
	r.be["p"].sink.Disconnected()
	if !r.dev.RemovePort(1) {
		t.Fatal("RemovePort(1) = false")
	}
	r.dev.Drain(time.Now().Add(time.Second))
	if n := offLoop.Load(); n != 0 {
		t.Errorf("%d of %d state changes ran off the event loop goroutine; want none", n, changes.Load())
	}
	if changes.Load() < 10 {
		t.Errorf("%d state changes seen; want every request above counted", changes.Load())
	}
}
