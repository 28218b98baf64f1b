package virtio

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"strings"
	"testing"

	"vmm/kvm"

	"vmm/devices/virtio/virtiotest"
)

// The test driver's layout: room for 256 descriptors, rings, then data.
const (
	tDesc    = 0x0000
	tAvail   = 0x1000
	tUsed    = 0x2000
	tData    = 0x3000
	tMemSize = 0x10000
	tMaxSize = 256
)

// tLayout is the one queue of the core tests.
var tLayout = virtiotest.Layout{Desc: tDesc, Avail: tAvail, Used: tUsed, Data: tData, DataEnd: tMemSize}

var (
	r = virtiotest.R
	w = virtiotest.W
)

// driver is virtiotest's driver side of one queue, with the transport's
// QueueConfig and the device's Queue it drives.
type driver struct {
	*virtiotest.Queue
	t        testing.TB
	cfg      *QueueConfig // the transport's side
	q        *Queue       // the device's side
	features uint64
}

// newDriver activates a queue of size n with features in mem (a fresh
// tMemSize one if nil).
func newDriver(t testing.TB, n uint16, features uint64, mem virtiotest.Mem) *driver {
	t.Helper()
	if mem == nil {
		mem = make(virtiotest.Mem, tMemSize)
	}
	d := &driver{Queue: virtiotest.NewQueue(mem, n, tLayout), t: t, cfg: NewQueueConfig(0, tMaxSize), features: features}
	d.activate()
	return d
}

// activate configures the queue at the test layout and activates it, as
// a driver does after a reset.
func (d *driver) activate() {
	d.t.Helper()
	d.Program(d.cfg)
	q, err := d.cfg.Activate(d.Mem, d.features)
	if err != nil {
		d.t.Fatalf("Activate() = %v; want nil", err)
	}
	d.q = q
}

// mustPop pops one chain and fails the test on error or empty queue.
func (d *driver) mustPop() *Chain {
	d.t.Helper()
	c, err := d.q.Pop()
	if err != nil || c == nil {
		d.t.Fatalf("Pop() = %v, %v; want a chain", c, err)
	}
	return c
}

// cycle pops and pushes n single-buffer chains, moving every index by n.
func (d *driver) cycle(n int) {
	d.t.Helper()
	for range n {
		d.Add(w(1))
		if err := d.q.PushUsed(d.mustPop(), 1); err != nil {
			d.t.Fatalf("PushUsed() = %v; want nil", err)
		}
	}
	d.TakeUsed()
}

// captureLog sends slog output to a buffer for the rest of the test.
func captureLog(t testing.TB) *bytes.Buffer {
	var b bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &b
}

// logLines returns the non-empty lines logged so far.
func logLines(b *bytes.Buffer) []string {
	return strings.FieldsFunc(b.String(), func(r rune) bool { return r == '\n' })
}

// fakeDevice records what the transport does to it.
type fakeDevice struct {
	features    uint64
	sizes       []uint16
	config      []byte
	activateErr error
	activations []ActivateContext
	resets      int
}

func (d *fakeDevice) Type() uint32         { return 3 }
func (d *fakeDevice) Features() uint64     { return d.features }
func (d *fakeDevice) QueueSizes() []uint16 { return d.sizes }

func (d *fakeDevice) ReadConfig(off uint64, data []byte) {
	if off < uint64(len(d.config)) {
		copy(data, d.config[off:])
	}
}

func (d *fakeDevice) WriteConfig(off uint64, data []byte) {
	if off < uint64(len(d.config)) {
		copy(d.config[off:], data)
	}
}

func (d *fakeDevice) Activate(ctx ActivateContext) error {
	d.activations = append(d.activations, ctx)
	return d.activateErr
}

func (d *fakeDevice) Reset() { d.resets++ }

// fakeKVM records registrations; every call succeeds unless fail is set.
type fakeKVM struct {
	ioeventfds   []kvm.IOEventFD
	irqfds       []int // fds, in order; deassigned ones are negated
	gsis         []uint32
	fail         error
	failAfterIOs int // with fail: how many IOEventFD calls succeed first
}

func (k *fakeKVM) IOEventFD(o kvm.IOEventFD) error {
	if k.fail != nil && len(k.ioeventfds) >= k.failAfterIOs {
		return k.fail
	}
	k.ioeventfds = append(k.ioeventfds, o)
	return nil
}

func (k *fakeKVM) IRQFD(fd int, gsi uint32) error {
	if k.fail != nil {
		return k.fail
	}
	k.irqfds, k.gsis = append(k.irqfds, fd), append(k.gsis, gsi)
	return nil
}

func (k *fakeKVM) IRQFDDeassign(fd int, gsi uint32) error {
	k.irqfds, k.gsis = append(k.irqfds, -fd), append(k.gsis, gsi)
	return nil
}

// tBase is where the tests put the transport.
const tBase = 0xd000_0000

// newTestMMIO builds a transport for dev over a fresh virtiotest.Mem.
func newTestMMIO(t testing.TB, dev *fakeDevice) (*MMIO, *fakeKVM) {
	t.Helper()
	vm := &fakeKVM{}
	m, err := NewMMIO(dev, make(virtiotest.Mem, tMemSize), vm, tBase, 5)
	if err != nil {
		t.Fatalf("NewMMIO() = %v; want nil", err)
	}
	t.Cleanup(func() { m.Close() })
	return m, vm
}

func rd32(m *MMIO, off uint64) uint32 {
	var b [4]byte
	m.Read(off, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

func wr32(m *MMIO, off uint64, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	m.Write(off, b[:])
}

func wr64(m *MMIO, low uint64, v uint64) {
	wr32(m, low, uint32(v))
	wr32(m, low+4, uint32(v>>32))
}

// mmioRegs is an MMIO transport's registers as virtiotest's handshake
// sees them.
type mmioRegs struct{ m *MMIO }

func (r mmioRegs) SetStatus(s uint32) { wr32(r.m, regStatus, s) }
func (r mmioRegs) Status() uint32     { return rd32(r.m, regStatus) }

func (r mmioRegs) SetDriverFeatures(sel, bits uint32) {
	wr32(r.m, regDriverFeaturesSel, sel)
	wr32(r.m, regDriverFeatures, bits)
}

func (r mmioRegs) SetupQueue(i uint32, size uint16, desc, avail, used uint64) {
	wr32(r.m, regQueueSel, i)
	wr32(r.m, regQueueNum, uint32(size))
	wr64(r.m, regQueueDescLow, desc)
	wr64(r.m, regQueueDriverLow, avail)
	wr64(r.m, regQueueDeviceLow, used)
	wr32(r.m, regQueueReady, 1)
}

// mmioLayout puts queue i's rings at 0x3000*i.
func mmioLayout(i uint32) virtiotest.Layout {
	base := 0x3000 * uint64(i)
	return virtiotest.Layout{Desc: base, Avail: base + 0x1000, Used: base + 0x2000}
}

// setupQueue programs queue i with size n at mmioLayout(i).
func setupQueue(m *MMIO, i uint32, n uint16) {
	l := mmioLayout(i)
	mmioRegs{m}.SetupQueue(i, n, l.Desc, l.Avail, l.Used)
}

// negotiate runs the driver's steps up to FEATURES_OK with features and
// returns the status read back.
func negotiate(m *MMIO, features uint64) uint32 { return virtiotest.Negotiate(mmioRegs{m}, features) }

// bringUp negotiates features, sets up queues 0..n-1 (size 8), and sets
// DRIVER_OK, as Linux's virtio_mmio does.
func bringUp(m *MMIO, features uint64, n int) {
	var ls []virtiotest.Layout
	for i := range n {
		ls = append(ls, mmioLayout(uint32(i)))
	}
	virtiotest.BringUp(mmioRegs{m}, features, 8, ls...)
}
