package virtio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"vmm/kvm"
)

// fakeMem is guest RAM [0, len(b)) in a byte slice.
type fakeMem []byte

func (m fakeMem) Slice(addr, n uint64) ([]byte, error) {
	if addr > uint64(len(m)) || n > uint64(len(m))-addr {
		return nil, fmt.Errorf("guest range [%#x, +%#x) is not RAM", addr, n)
	}
	return m[addr : addr+n : addr+n], nil
}

// The test driver's layout: room for 256 descriptors, rings, then data.
const (
	tDesc    = 0x0000
	tAvail   = 0x1000
	tUsed    = 0x2000
	tData    = 0x3000
	tMemSize = 0x10000
	tMaxSize = 256
)

// buf is one buffer of a chain the test driver offers.
type buf struct {
	n     uint32
	write bool
}

func r(n uint32) buf { return buf{n: n} }
func w(n uint32) buf { return buf{n: n, write: true} }

// driver plays the Linux driver's side of one split virtqueue in a
// fakeMem: it writes descriptors and the avail ring, reads the used ring.
type driver struct {
	t        testing.TB
	mem      fakeMem
	cfg      *QueueConfig // the transport's side
	q        *Queue       // the device's side
	features uint64
	size     uint16
	next     uint16 // next descriptor slot to hand out (wraps)
	data     uint64 // next data address to hand out (wraps)
	availIdx uint16
	usedSeen uint16
}

// newDriver activates a queue of size n with features in mem (a fresh
// tMemSize one if nil).
func newDriver(t testing.TB, n uint16, features uint64, mem fakeMem) *driver {
	t.Helper()
	if mem == nil {
		mem = make(fakeMem, tMemSize)
	}
	d := &driver{t: t, mem: mem, cfg: NewQueueConfig(0, tMaxSize), size: n, data: tData, features: features}
	d.activate()
	return d
}

// activate configures the queue at the test layout and activates it, as
// a driver does after a reset.
func (d *driver) activate() {
	d.t.Helper()
	d.cfg.SetSize(d.size)
	d.cfg.SetDescAddr(tDesc)
	d.cfg.SetAvailAddr(tAvail)
	d.cfg.SetUsedAddr(tUsed)
	d.cfg.SetReady(true)
	q, err := d.cfg.Activate(d.mem, d.features)
	if err != nil {
		d.t.Fatalf("Activate() = %v; want nil", err)
	}
	d.q = q
}

// put16 and get16 access ring fields the device reads or writes
// concurrently, atomically as a real driver's barriers would.
func (d *driver) put16(addr uint64, v uint16) { Store16(d.mem, int(addr), v) }
func (d *driver) get16(addr uint64) uint16    { return Load16(d.mem, int(addr)) }
func (d *driver) get32(addr uint64) uint32    { return binary.LittleEndian.Uint32(d.mem[addr:]) }

// descAddr is the buffer address in descriptor i of the queue's table.
func (d *driver) descAddr(i uint16) uint64 {
	return binary.LittleEndian.Uint64(d.mem[tDesc+16*uint64(i):])
}

// bigMem is 4 GiB of lazily backed RAM, for byte-count limits.
func bigMem(t testing.TB) fakeMem {
	m, err := unix.Mmap(-1, 0, 1<<32, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Skipf("no 4 GiB mapping: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	return m
}

// setDesc writes descriptor i of the table at table.
func (d *driver) setDesc(table uint64, i uint16, addr uint64, n uint32, flags, next uint16) {
	b := d.mem[table+16*uint64(i):]
	binary.LittleEndian.PutUint64(b[0:], addr)
	binary.LittleEndian.PutUint32(b[8:], n)
	binary.LittleEndian.PutUint16(b[12:], flags)
	binary.LittleEndian.PutUint16(b[14:], next)
}

// alloc hands out n bytes of data area filled with a pattern.
func (d *driver) alloc(n uint32) uint64 {
	if d.data+uint64(n) > tMemSize {
		d.data = tData
	}
	a := d.data
	d.data += (uint64(n) + 15) &^ 15
	for i := range n {
		d.mem[a+uint64(i)] = byte(a) + byte(i)
	}
	return a
}

// offer publishes head in the avail ring and bumps avail idx with a
// release store, as a concurrent driver must.
func (d *driver) offer(head uint16) {
	// A plain store: the idx store below publishes it (a CAS on the
	// entry's word would also rewrite the neighbouring entry).
	binary.LittleEndian.PutUint16(d.mem[tAvail+4+2*uint64(d.availIdx%d.size):], head)
	d.availIdx++
	d.put16(tAvail+2, d.availIdx)
}

// link writes bufs as a chain in table starting at slot first; slots
// wrap at n.
func (d *driver) link(table uint64, first, n uint16, bufs []buf) {
	for k, b := range bufs {
		i := (first + uint16(k)) % n
		var flags uint16
		if b.write {
			flags |= descFWrite
		}
		next := (i + 1) % n
		if k < len(bufs)-1 {
			flags |= descFNext
		} else {
			next = 0
		}
		d.setDesc(table, i, d.alloc(b.n), b.n, flags, next)
	}
}

// add offers a direct chain and returns its head.
func (d *driver) add(bufs ...buf) uint16 {
	head := d.next
	d.link(tDesc, head, d.size, bufs)
	d.next = (head + uint16(len(bufs))) % d.size
	d.offer(head)
	return head
}

// addIndirect offers a chain held in an indirect table and returns its head.
func (d *driver) addIndirect(bufs ...buf) uint16 {
	n := uint16(len(bufs))
	table := d.alloc(16 * uint32(n))
	d.link(table, 0, n, bufs)
	head := d.next
	d.setDesc(tDesc, head, table, 16*uint32(n), descFIndirect, 0)
	d.next = (head + 1) % d.size
	d.offer(head)
	return head
}

// usedElem is one entry of the used ring.
type usedElem struct{ id, n uint32 }

// takeUsed returns the used entries the device published since last time.
func (d *driver) takeUsed() []usedElem {
	var out []usedElem
	for idx := Load16(d.mem, tUsed+2); d.usedSeen != idx; d.usedSeen++ {
		e := tUsed + 4 + 8*uint64(d.usedSeen%d.size)
		out = append(out, usedElem{d.get32(e), d.get32(e + 4)})
	}
	return out
}

func (d *driver) usedEventAddr() uint64  { return tAvail + 4 + 2*uint64(d.size) }
func (d *driver) availEventAddr() uint64 { return tUsed + 4 + 8*uint64(d.size) }

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
		d.add(w(1))
		if err := d.q.PushUsed(d.mustPop(), 1); err != nil {
			d.t.Fatalf("PushUsed() = %v; want nil", err)
		}
	}
	d.takeUsed()
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

// newTestMMIO builds a transport for dev over a fresh fakeMem.
func newTestMMIO(t testing.TB, dev *fakeDevice) (*MMIO, *fakeKVM) {
	t.Helper()
	vm := &fakeKVM{}
	m, err := NewMMIO(dev, make(fakeMem, tMemSize), vm, tBase, 5)
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

// setupQueue programs queue i with size n, its rings at 0x3000*i.
func setupQueue(m *MMIO, i uint32, n uint32) {
	wr32(m, regQueueSel, i)
	wr32(m, regQueueNum, n)
	base := 0x3000 * uint64(i)
	wr64(m, regQueueDescLow, base)
	wr64(m, regQueueDriverLow, base+0x1000)
	wr64(m, regQueueDeviceLow, base+0x2000)
	wr32(m, regQueueReady, 1)
}

// negotiate runs the driver's steps up to FEATURES_OK with features and
// returns the status read back.
func negotiate(m *MMIO, features uint64) uint32 {
	wr32(m, regStatus, statusAcknowledge)
	wr32(m, regStatus, statusAcknowledge|statusDriver)
	wr32(m, regDriverFeaturesSel, 0)
	wr32(m, regDriverFeatures, uint32(features))
	wr32(m, regDriverFeaturesSel, 1)
	wr32(m, regDriverFeatures, uint32(features>>32))
	wr32(m, regStatus, statusAcknowledge|statusDriver|statusFeaturesOK)
	return rd32(m, regStatus)
}

// bringUp negotiates features, sets up queues 0..n-1 (size 8), and sets
// DRIVER_OK, as Linux's virtio_mmio does.
func bringUp(m *MMIO, features uint64, n int) {
	negotiate(m, features)
	for i := range n {
		setupQueue(m, uint32(i), 8)
	}
	wr32(m, regStatus, statusAcknowledge|statusDriver|statusFeaturesOK|statusDriverOK)
}

// eventCount reads (and so clears) an eventfd's counter; 0 if none.
func eventCount(t testing.TB, fd int) uint64 {
	t.Helper()
	var b [8]byte
	n, err := unix.Read(fd, b[:])
	if err == unix.EAGAIN {
		return 0
	}
	if err != nil || n != 8 {
		t.Fatalf("read(eventfd %d) = %d, %v; want 8 bytes", fd, n, err)
	}
	return binary.NativeEndian.Uint64(b[:])
}
