package virtio

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"vmm/devices/virtio/virtiotest"
)

func testDevice() *fakeDevice {
	return &fakeDevice{features: 1<<1 | 1<<34, sizes: []uint16{8, 16, 32}, config: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
}

func TestMMIOIdentity(t *testing.T) {
	m, _ := newTestMMIO(t, testDevice())
	for _, tt := range []struct {
		off  uint64
		want uint32
	}{
		{regMagicValue, 0x74726976},
		{regVersion, 2},
		{regDeviceID, 3},
		{regVendorID, 0x554d4551},
		{regStatus, 0},
		{regInterruptStatus, 0},
		{regConfigGeneration, 0},
		{regSHMLenLow, 0xffffffff},
		{0x0c0, 0}, // QueueReset: not offered
	} {
		if got := rd32(m, tt.off); got != tt.want {
			t.Errorf("Read(%#x) = %#x; want %#x", tt.off, got, tt.want)
		}
	}
	if m.Size() != 0x1000 {
		t.Errorf("Size() = %#x; want 0x1000", m.Size())
	}
	if got, want := m.CmdlineArg(), "virtio_mmio.device=4K@0xd0000000:5"; got != want {
		t.Errorf("CmdlineArg() = %q; want %q", got, want)
	}
}

func TestMMIOFeatures(t *testing.T) {
	offered := uint64(1<<1) | FeatureVersion1 | FeatureRingEventIdx | FeatureRingIndirectDesc
	m, _ := newTestMMIO(t, testDevice())
	for sel, want := range []uint32{uint32(offered), uint32(offered >> 32), 0} {
		wr32(m, regDeviceFeaturesSel, uint32(sel))
		if got := rd32(m, regDeviceFeatures); got != want {
			t.Errorf("DeviceFeatures[sel %d] = %#x; want %#x", sel, got, want)
		}
	}
	tests := []struct {
		name     string
		features uint64
		ok       bool
	}{
		{"all offered", offered, true},
		{"version 1 only", FeatureVersion1, true},
		{"no VERSION_1", offered &^ FeatureVersion1, false},
		{"unoffered bit", FeatureVersion1 | 1<<5, false},
		{"transport bit the device tried to offer", FeatureVersion1 | 1<<34, false},
		{"unoffered high bit", FeatureVersion1 | 1<<40, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := testDevice()
			m, _ := newTestMMIO(t, dev)
			captureLog(t)
			status := negotiate(m, tt.features)
			if got := status&statusFeaturesOK != 0; got != tt.ok {
				t.Fatalf("FEATURES_OK after negotiating %#x = %v; want %v", tt.features, got, tt.ok)
			}
			if !tt.ok {
				return
			}
			// Features are frozen after FEATURES_OK.
			wr32(m, regDriverFeaturesSel, 0)
			wr32(m, regDriverFeatures, 0)
			wr32(m, regStatus, status|statusDriverOK)
			if len(dev.activations) != 1 || dev.activations[0].Features != tt.features {
				t.Errorf("Activate features = %v; want one call with %#x", dev.activations, tt.features)
			}
		})
	}
}

func TestMMIOQueueRegisters(t *testing.T) {
	m, _ := newTestMMIO(t, testDevice())
	for i, want := range []uint32{8, 16, 32, 0, 0} {
		wr32(m, regQueueSel, uint32(i))
		if got := rd32(m, regQueueNumMax); got != want {
			t.Errorf("QueueNumMax[%d] = %d; want %d", i, got, want)
		}
	}
	wr32(m, regQueueSel, 1)
	wr32(m, regQueueNum, 4)
	wr64(m, regQueueDescLow, 0x1_2345_6780)
	wr64(m, regQueueDriverLow, 0x2_0000_1002)
	wr64(m, regQueueDeviceLow, 0x3_0000_2004)
	check := func(when string, num uint32, ready uint32) {
		t.Helper()
		for _, r := range []struct {
			off  uint64
			want uint32
		}{
			{regQueueNum, num}, {regQueueReady, ready},
			{regQueueDescLow, 0x23456780}, {regQueueDescHigh, 1},
			{regQueueDriverLow, 0x1002}, {regQueueDriverHigh, 2},
			{regQueueDeviceLow, 0x2004}, {regQueueDeviceHigh, 3},
		} {
			if got := rd32(m, r.off); got != r.want {
				t.Errorf("%s: Read(%#x) = %#x; want %#x", when, r.off, got, r.want)
			}
		}
	}
	check("after setup", 4, 0)
	wr32(m, regQueueReady, 1)
	wr32(m, regQueueNum, 2) // ignored: the queue is ready
	wr32(m, regQueueDescLow, 0)
	check("writes while ready", 4, 1)
	wr32(m, regQueueReady, 0) // Linux's vm_del_vq
	check("ready cleared", 4, 0)
	q := m.queues[1]
	if q.Size() != 4 || q.DescAddr() != 0x1_2345_6780 || q.AvailAddr() != 0x2_0000_1002 || q.UsedAddr() != 0x3_0000_2004 {
		t.Errorf("queue 1 = size %d desc %#x avail %#x used %#x; want the registers' values", q.Size(), q.DescAddr(), q.AvailAddr(), q.UsedAddr())
	}
	wr32(m, regQueueSel, 7) // no such queue: writes go nowhere
	wr32(m, regQueueNum, 4)
	wr32(m, regQueueReady, 1)
	if got := rd32(m, regQueueReady); got != 0 {
		t.Errorf("QueueReady[7] = %d; want 0", got)
	}
}

func TestMMIOActivate(t *testing.T) {
	dev := testDevice()
	m, vm := newTestMMIO(t, dev)
	features := uint64(FeatureVersion1 | FeatureRingEventIdx)
	bringUp(m, features, 2) // queue 2 stays disabled
	if len(dev.activations) != 1 {
		t.Fatalf("Activate called %d times; want 1", len(dev.activations))
	}
	ctx := dev.activations[0]
	if ctx.Features != features || ctx.Mem == nil || ctx.Interrupt == nil {
		t.Errorf("Activate(ctx) features %#x mem %v interrupt %v; want %#x, non-nil, non-nil", ctx.Features, ctx.Mem, ctx.Interrupt, features)
	}
	if len(ctx.Queues) != 3 || len(ctx.Notifiers) != 3 {
		t.Fatalf("Activate(ctx) has %d queues, %d notifiers; want 3, 3", len(ctx.Queues), len(ctx.Notifiers))
	}
	for i, q := range ctx.Queues {
		if want := i < 2; (q != nil) != want || q != nil && q.Index() != i {
			t.Errorf("ctx.Queues[%d] = %v; want a ring with index %d: %v", i, q, i, want)
		}
		if ctx.Notifiers[i].FD != vm.ioeventfds[i].FD {
			t.Errorf("ctx.Notifiers[%d].FD = %d; want the ioeventfd %d", i, ctx.Notifiers[i].FD, vm.ioeventfds[i].FD)
		}
	}
	// The active queue works: event idx is on, so Pop writes avail_event.
	if c, err := ctx.Queues[0].Pop(); c != nil || err != nil {
		t.Errorf("Queues[0].Pop() = %v, %v; want nil, nil", c, err)
	}
	if s := rd32(m, regStatus); s != statusAcknowledge|statusDriver|statusFeaturesOK|statusDriverOK {
		t.Errorf("Status = %#x; want %#x", s, statusAcknowledge|statusDriver|statusFeaturesOK|statusDriverOK)
	}
	// After DRIVER_OK queue registers are frozen.
	wr32(m, regQueueSel, 2)
	wr32(m, regQueueReady, 1)
	if m.queues[2].Ready() {
		t.Errorf("QueueReady write after DRIVER_OK took effect; want it ignored")
	}
}

func TestMMIOActivateFailures(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(m *MMIO, dev *fakeDevice)
		devCall bool // whether dev.Activate is reached
	}{
		{"queue outside RAM", func(m *MMIO, _ *fakeDevice) {
			negotiate(m, FeatureVersion1)
			setupQueue(m, 0, 8)
			wr32(m, regQueueSel, 0)
			wr32(m, regQueueReady, 0)
			wr64(m, regQueueDeviceLow, 1<<40)
			wr32(m, regQueueReady, 1)
		}, false},
		{"bad queue size", func(m *MMIO, _ *fakeDevice) {
			negotiate(m, FeatureVersion1)
			setupQueue(m, 1, 12)
		}, false},
		{"device refuses", func(m *MMIO, dev *fakeDevice) {
			dev.activateErr = errors.New("no backend")
			negotiate(m, FeatureVersion1)
			setupQueue(m, 0, 8)
		}, true},
		{"no FEATURES_OK", func(m *MMIO, _ *fakeDevice) {
			wr32(m, regStatus, statusAcknowledge|statusDriver)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := captureLog(t)
			dev := testDevice()
			m, _ := newTestMMIO(t, dev)
			tt.setup(m, dev)
			wr32(m, regStatus, rd32(m, regStatus)|statusDriverOK)
			if got := len(dev.activations) > 0; got != tt.devCall {
				t.Errorf("dev.Activate called = %v; want %v", got, tt.devCall)
			}
			if s := rd32(m, regStatus); s&statusNeedsReset == 0 {
				t.Errorf("Status = %#x; want DEVICE_NEEDS_RESET (0x40) set", s)
			}
			if isr := rd32(m, regInterruptStatus); isr != isrConfigChanged {
				t.Errorf("InterruptStatus = %#x; want %#x", isr, isrConfigChanged)
			}
			if g := rd32(m, regConfigGeneration); g != 1 {
				t.Errorf("ConfigGeneration = %d; want 1", g)
			}
			if l := logLines(log); len(l) != 1 || !strings.Contains(l[0], "needs reset") {
				t.Errorf("log = %q; want one 'needs reset' line", l)
			}
			wr32(m, regStatus, 0)
			if s := rd32(m, regStatus); s != 0 {
				t.Errorf("Status after reset = %#x; want 0", s)
			}
		})
	}
}

func TestMMIOReset(t *testing.T) {
	dev := testDevice()
	m, vm := newTestMMIO(t, dev)
	bringUp(m, FeatureVersion1, 3)
	dev.activations[0].Interrupt.Signal(0)
	wr32(m, regQueueNotify, 1)
	wr32(m, regStatus, 0)
	if dev.resets != 1 {
		t.Errorf("dev.Reset called %d times; want 1", dev.resets)
	}
	for i, q := range m.queues {
		if q.Ready() || q.Size() != q.MaxSize() || q.DescAddr() != 0 {
			t.Errorf("queue %d after reset: ready %v size %d desc %#x; want false %d 0", i, q.Ready(), q.Size(), q.MaxSize(), q.DescAddr())
		}
	}
	for _, r := range []uint64{regStatus, regInterruptStatus} {
		if got := rd32(m, r); got != 0 {
			t.Errorf("Read(%#x) after reset = %#x; want 0", r, got)
		}
	}
	if n := virtiotest.EventCount(t, vm.ioeventfds[1].FD); n != 0 {
		t.Errorf("queue 1 eventfd after reset = %d; want drained", n)
	}
	// A second bring-up works and negotiates afresh.
	bringUp(m, FeatureVersion1|FeatureRingIndirectDesc, 1)
	if len(dev.activations) != 2 || dev.activations[1].Features != FeatureVersion1|FeatureRingIndirectDesc {
		t.Errorf("second bring-up: %d activations; want 2 with the new features", len(dev.activations))
	}
}

func TestMMIOInterrupt(t *testing.T) {
	dev := testDevice()
	m, vm := newTestMMIO(t, dev)
	bringUp(m, FeatureVersion1, 1)
	irq := dev.activations[0].Interrupt
	fd := vm.irqfds[0]
	irq.Signal(0)
	irq.Signal(0)
	if got := rd32(m, regInterruptStatus); got != isrUsedBuffer {
		t.Errorf("InterruptStatus after Signal = %#x; want 1", got)
	}
	if n := virtiotest.EventCount(t, fd); n != 2 {
		t.Errorf("irqfd count after two Signals = %d; want 2", n)
	}
	irq.ConfigChanged()
	if got := rd32(m, regInterruptStatus); got != isrUsedBuffer|isrConfigChanged {
		t.Errorf("InterruptStatus after ConfigChanged = %#x; want 3", got)
	}
	if g := rd32(m, regConfigGeneration); g != 1 {
		t.Errorf("ConfigGeneration after ConfigChanged = %d; want 1", g)
	}
	wr32(m, regInterruptACK, isrUsedBuffer)
	if got := rd32(m, regInterruptStatus); got != isrConfigChanged {
		t.Errorf("InterruptStatus after ACK 1 = %#x; want 2", got)
	}
	wr32(m, regInterruptACK, isrConfigChanged)
	if got := rd32(m, regInterruptStatus); got != 0 {
		t.Errorf("InterruptStatus after ACK 2 = %#x; want 0", got)
	}
}

func TestMMIONotify(t *testing.T) {
	m, vm := newTestMMIO(t, testDevice())
	tests := []struct {
		data  []byte
		queue int // -1: none
	}{
		{[]byte{1, 0, 0, 0}, 1},
		{[]byte{2, 0}, 2},
		{[]byte{0}, 0},
		{[]byte{3, 0, 0, 0}, -1},
		{[]byte{0, 0, 0, 0, 0, 0, 0, 0}, -1},
	}
	for _, tt := range tests {
		m.Write(regQueueNotify, tt.data)
		for i, io := range vm.ioeventfds {
			want := uint64(0)
			if i == tt.queue {
				want = 1
			}
			if n := virtiotest.EventCount(t, io.FD); n != want {
				t.Errorf("Write(QueueNotify, %v): queue %d eventfd = %d; want %d", tt.data, i, n, want)
			}
		}
	}
}

func TestMMIOConfig(t *testing.T) {
	dev := testDevice()
	m, _ := newTestMMIO(t, dev)
	tests := []struct {
		off  uint64
		n    int
		want []byte
	}{
		{0x100, 1, []byte{1}},
		{0x101, 2, []byte{2, 3}},
		{0x104, 4, []byte{5, 6, 7, 8}},
		{0x100, 8, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{0x108, 4, []byte{9, 10, 0, 0}},
		{0x100, 3, []byte{0, 0, 0}},
		{0xffe, 4, []byte{0, 0, 0, 0}},
		{0x2000, 4, []byte{0, 0, 0, 0}},
	}
	for _, tt := range tests {
		got := make([]byte, tt.n)
		for i := range got {
			got[i] = 0xaa
		}
		m.Read(tt.off, got)
		if string(got) != string(tt.want) {
			t.Errorf("Read(%#x, %d bytes) = %v; want %v", tt.off, tt.n, got, tt.want)
		}
	}
	m.Write(0x102, []byte{0x33, 0x44})
	if dev.config[2] != 0x33 || dev.config[3] != 0x44 {
		t.Errorf("config after Write(0x102, 33 44) = %v; want bytes 2,3 = 33 44", dev.config)
	}
}

// TestMMIOBadAccess: odd sizes and offsets read 0, are ignored on write,
// and never panic.
func TestMMIOBadAccess(t *testing.T) {
	dev := testDevice()
	m, _ := newTestMMIO(t, dev)
	for _, off := range []uint64{0, 1, 2, regStatus, regStatus + 1, 0xfd, 0xff, 0xfff, 0x1000, 1<<64 - 1} {
		for _, n := range []int{0, 1, 2, 3, 4, 5, 8, 16} {
			if off%4 == 0 && n == 4 || off >= regConfig {
				continue
			}
			b := make([]byte, n)
			for i := range b {
				b[i] = 0xff
			}
			m.Read(off, b)
			for _, v := range b {
				if v != 0 {
					t.Errorf("Read(%#x, %d bytes) = %v; want zeros", off, n, b)
					break
				}
			}
			m.Write(off, b)
		}
	}
	if s := rd32(m, regStatus); s != 0 {
		t.Errorf("Status after bad writes = %#x; want 0", s)
	}
	for _, off := range []uint64{regMagicValue, regDeviceID, regQueueNumMax, regInterruptStatus, 0x0fc, 0x0f0} {
		wr32(m, off, 0x1234) // read-only or unknown: ignored
	}
	if rd32(m, regMagicValue) != mmioMagic || dev.resets != 0 {
		t.Errorf("writes to read-only registers changed state")
	}
}

func TestMMIORegistrations(t *testing.T) {
	dev := testDevice()
	vm := &fakeKVM{}
	m, err := NewMMIO(dev, make(virtiotest.Mem, tMemSize), vm, tBase, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(vm.ioeventfds) != 3 || len(vm.irqfds) != 1 || vm.gsis[0] != 9 {
		t.Fatalf("NewMMIO registered %d ioeventfds, irqfds %v gsis %v; want 3, one on gsi 9", len(vm.ioeventfds), vm.irqfds, vm.gsis)
	}
	var fds []int
	for i, io := range vm.ioeventfds {
		if io.Addr != tBase+0x50 || io.Len != 4 || io.PIO || io.Deassign || io.Datamatch == nil || *io.Datamatch != uint64(i) {
			t.Errorf("IOEventFD[%d] = %+v; want addr %#x len 4 datamatch %d", i, io, tBase+0x50, i)
		}
		fds = append(fds, io.FD)
	}
	fds = append(fds, vm.irqfds[0])
	for _, fd := range fds {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_NONBLOCK == 0 {
			t.Errorf("fd %d flags = %#x, %v; want O_NONBLOCK", fd, fl, err)
		}
		if fd, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fd&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d fd flags = %#x, %v; want FD_CLOEXEC", fd, fd, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close() = %v; want nil", err)
	}
	if len(vm.ioeventfds) != 6 || len(vm.irqfds) != 2 || vm.irqfds[1] != -fds[3] {
		t.Errorf("after Close: %d ioeventfd calls, irqfds %v; want 6 and a deassign of %d", len(vm.ioeventfds), vm.irqfds, fds[3])
	}
	for _, io := range vm.ioeventfds[3:] {
		if !io.Deassign {
			t.Errorf("Close() IOEventFD %+v; want Deassign", io)
		}
	}
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("fd %d after Close: %v; want EBADF", fd, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close() = %v; want nil", err)
	}
}

func TestNewMMIOErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		sizes []uint16
		vm    *fakeKVM
		want  string
	}{
		{"zero queue size", []uint16{8, 0}, &fakeKVM{}, "queue 1: max size 0"},
		{"odd queue size", []uint16{24}, &fakeKVM{}, "max size 24"},
		{"ioeventfd refused", []uint16{8, 8}, &fakeKVM{fail: boom, failAfterIOs: 1}, "queue 1: boom"},
		{"irqfd refused", []uint16{8}, &fakeKVM{fail: boom, failAfterIOs: 1}, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := testDevice()
			dev.sizes = tt.sizes
			m, err := NewMMIO(dev, make(virtiotest.Mem, tMemSize), tt.vm, tBase, 5)
			if m != nil || err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "0xd0000000") {
				t.Fatalf("NewMMIO() = %v, %v; want an error naming 0xd0000000 and %q", m, err, tt.want)
			}
			for _, io := range tt.vm.ioeventfds[min(1, len(tt.vm.ioeventfds)):] {
				if !io.Deassign {
					t.Errorf("after failing NewMMIO: IOEventFD %+v; want the registered one deassigned", io)
				}
			}
		})
	}
}
