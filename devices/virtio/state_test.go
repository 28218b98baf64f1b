package virtio

import (
	"testing"

	"vmm/devices/virtio/virtiotest"
)

// statefulDevice is a fakeDevice with snapshot support: it saves a
// fixed blob and records restores.
type statefulDevice struct {
	fakeDevice
	blob     []byte
	frozen   bool
	restored []*ActivateContext
	data     [][]byte
}

func (d *statefulDevice) SaveState(rings func()) ([]byte, error) {
	d.frozen = true
	rings()
	return d.blob, nil
}

func (d *statefulDevice) Thaw() { d.frozen = false }

func (d *statefulDevice) RestoreState(ctx *ActivateContext, data []byte) error {
	d.restored = append(d.restored, ctx)
	d.data = append(d.data, data)
	return nil
}

func newStateful() *statefulDevice {
	return &statefulDevice{fakeDevice: *testDevice(), blob: []byte("device state")}
}

// TestMMIOStateRoundTrip: a transport restored from its saved state
// reads back the same registers, and its device is handed the rings at
// the saved indices in place of Activate (which is not called again).
func TestMMIOStateRoundTrip(t *testing.T) {
	dev := newStateful()
	m, _ := newTestMMIO(t, &dev.fakeDevice)
	m.dev = dev // the transport talks to the stateful wrapper
	bringUp(m, FeatureVersion1|FeatureRingEventIdx, 3)
	if len(dev.activations) != 1 {
		t.Fatalf("activations = %d; want 1", len(dev.activations))
	}
	r := dev.activations[0].Queues[1]
	r.lastAvail, r.usedIdx, r.usedFlags, r.signalled, r.notify = 5, 4, 1, 3, false
	wr32(m, regQueueSel, 2)
	m.irq.ConfigChanged()
	state, err := m.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if !dev.frozen {
		t.Errorf("device not frozen after SaveState")
	}
	m.Thaw()
	if dev.frozen {
		t.Errorf("device frozen after Thaw")
	}

	dev2 := newStateful()
	m2, _ := newTestMMIO(t, &dev2.fakeDevice)
	m2.dev = dev2
	if err := m2.RestoreState(state); err != nil {
		t.Fatalf("RestoreState = %v", err)
	}
	for _, reg := range []uint64{regStatus, regQueueSel, regInterruptStatus, regConfigGeneration, regQueueNum, regQueueReady, regQueueDescLow, regQueueDriverLow, regQueueDeviceLow} {
		if got, want := rd32(m2, reg), rd32(m, reg); got != want {
			t.Errorf("restored register %#x = %#x; want %#x", reg, got, want)
		}
	}
	if len(dev2.activations) != 0 || len(dev2.restored) != 1 || dev2.restored[0] == nil {
		t.Fatalf("restored device: %d activations, restores %v; want 0 and one with rings", len(dev2.activations), dev2.restored)
	}
	if string(dev2.data[0]) != "device state" {
		t.Errorf("device state = %q; want %q", dev2.data[0], "device state")
	}
	r2 := dev2.restored[0].Queues[1]
	if r2.lastAvail != 5 || r2.usedIdx != 4 || r2.usedFlags != 1 || r2.signalled != 3 || r2.notify || !r2.eventIdx {
		t.Errorf("restored ring = %+v; want last avail 5, used 4, flags 1, signalled 3, notify off, event idx", r2)
	}
	if dev2.restored[0].Features != dev.activations[0].Features {
		t.Errorf("restored features %#x; want %#x", dev2.restored[0].Features, dev.activations[0].Features)
	}

	// Any prefix, extra byte, or another device's state is refused.
	for n := range state {
		d := newStateful()
		mm, _ := newTestMMIO(t, &d.fakeDevice)
		mm.dev = d
		if err := mm.RestoreState(state[:n]); err == nil {
			t.Fatalf("RestoreState(%d of %d bytes) = nil; want an error", n, len(state))
		}
	}
	other := newStateful()
	other.features = 1 << 2
	mo, _ := newTestMMIO(t, &other.fakeDevice)
	mo.dev = other
	if err := mo.RestoreState(state); err == nil {
		t.Errorf("RestoreState on a device offering other features = nil; want an error")
	}
}

// TestResume: a chain held across a snapshot is walked again at its head.
func TestResume(t *testing.T) {
	d := newDriver(t, 8, 0, virtiotest.BigMem(t))
	head := d.Add(r(100), r(28))
	c := d.mustPop()
	if c.Head != head {
		t.Fatalf("popped head %d; want %d", c.Head, head)
	}
	c2, err := d.q.Resume(head)
	if err != nil {
		t.Fatal(err)
	}
	if c2.ReadableLen != 128 || c2.Head != head {
		t.Errorf("Resume(%d) = head %d, %d readable bytes; want 128", head, c2.Head, c2.ReadableLen)
	}
	if _, err := d.q.Resume(8); err == nil {
		t.Errorf("Resume(8) on a queue of 8 = nil; want an error")
	}
	if err := d.q.PushUsed(c2, 0); err != nil {
		t.Errorf("PushUsed(resumed chain) = %v", err)
	}
}

// FuzzTransportState: a transport state from a snapshot file is refused
// or restored, never a panic.
func FuzzTransportState(f *testing.F) {
	dev := newStateful()
	m := &MMIO{}
	m.transport = transport{name: "fuzz", dev: dev, mem: make(virtiotest.Mem, tMemSize), offered: dev.features&^transportFeatures | offeredFeatures, intr: &m.irq}
	m.irq.fd.Store(-1)
	for i, n := range dev.sizes {
		m.queues = append(m.queues, NewQueueConfig(i, n))
	}
	h, qs, _ := m.saveRegs()
	is := []byte{0, 0, 0, 0, 0, 0, 0, 0}
	f.Add(encodeTransport(h, qs, is, []byte("x")))
	h.Status = statusAcknowledge | statusDriver | statusFeaturesOK | statusDriverOK
	h.DriverFeatures = FeatureVersion1
	for i := range qs {
		qs[i] = queueState{Desc: 0x1000, Avail: 0x2000, Used: 0x3000, Size: 8, Ready: 1, Active: 1, Notify: 1, LastAvail: 3}
	}
	f.Add(encodeTransport(h, qs, is, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := newStateful()
		mm := &MMIO{}
		mm.transport = transport{name: "fuzz", dev: d, mem: make(virtiotest.Mem, tMemSize), offered: d.features&^transportFeatures | offeredFeatures, intr: &mm.irq}
		mm.irq.fd.Store(-1)
		for i, n := range d.sizes {
			mm.queues = append(mm.queues, NewQueueConfig(i, n))
		}
		_ = mm.RestoreState(b)
	})
}

// TestPCIStateRoundTrip: a virtio-pci function restored from its saved
// state reads back the same common configuration, config space, MSI-X
// table, vectors and pending bits, and its device gets the rings in
// place of Activate.
func TestPCIStateRoundTrip(t *testing.T) {
	dev := newStateful()
	r := newTestPCI(t, &dev.fakeDevice)
	r.p.dev = dev
	r.enableMSIX(true)
	r.negotiate(FeatureVersion1 | FeatureRingEventIdx)
	r.setupQueue(1, 8)
	r.wr(commonMSIX, 2, 3)
	r.wr(commonQMSIX, 2, 1)
	e := uint64(pciMSIXTableOff + 16)
	r.wr(e, 4, 0xfee00000)
	r.wr(e+8, 4, 0x41)
	r.wr(commonStatus, 1, statusAcknowledge|statusDriver|statusFeaturesOK|statusDriverOK)
	if len(dev.activations) != 1 {
		t.Fatalf("activations = %d; want 1", len(dev.activations))
	}
	dev.activations[0].Queues[1].lastAvail = 9
	r.p.irq.ConfigChanged() // vector 3 unprogrammed and masked: pending
	state, err := r.p.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	r.p.Thaw()

	dev2 := newStateful()
	r2 := newTestPCI(t, &dev2.fakeDevice)
	r2.p.dev = dev2
	if err := r2.p.RestoreState(state); err != nil {
		t.Fatalf("RestoreState = %v", err)
	}
	for _, reg := range []struct {
		off uint64
		n   int
	}{{commonStatus, 1}, {commonMSIX, 2}, {commonQSelect, 2}, {commonQMSIX, 2}, {commonQSize, 2}, {commonQEnable, 2},
		{commonQDescLo, 8}, {commonCfgGeneration, 1}, {e, 4}, {e + 8, 4}, {pciMSIXPBAOff, 8}} {
		if got, want := r2.rd(reg.off, reg.n), r.rd(reg.off, reg.n); got != want {
			t.Errorf("restored BAR offset %#x = %#x; want %#x", reg.off, got, want)
		}
	}
	for off := uint64(0); off < 256; off += 4 {
		if got, want := r2.cfgR(off, 4), r.cfgR(off, 4); got != want {
			t.Errorf("restored config dword %#x = %#x; want %#x", off, got, want)
		}
	}
	if len(dev2.activations) != 0 || len(dev2.restored) != 1 || dev2.restored[0] == nil || dev2.restored[0].Queues[1].lastAvail != 9 {
		t.Errorf("restored device: %d activations, %d restores; want 0 and one with the ring at last avail 9", len(dev2.activations), len(dev2.restored))
	}
	// Another function's state is refused.
	other := newStateful()
	other.sizes = []uint16{8, 16}
	r3 := newTestPCI(t, &other.fakeDevice)
	r3.p.dev = other
	if err := r3.p.RestoreState(state); err == nil {
		t.Errorf("RestoreState on a function with other queues = nil; want an error")
	}
}
