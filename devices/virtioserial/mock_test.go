package virtioserial

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vmm/chardev"
	"vmm/devices/virtio"
	"vmm/soak"
)

// The mock driver plays Linux's virtio_console driver against the
// device over guest memory in a []byte, the way QEMU's qtest and
// rust-vmm's mock queues do: no vCPU, real queues, real eventfds, the
// real event loop and real sockets on the host side.

type fakeMem struct{ b []byte }

func (m *fakeMem) Slice(addr, n uint64) ([]byte, error) {
	if addr > uint64(len(m.b)) || n > uint64(len(m.b))-addr {
		return nil, fmt.Errorf("[%#x,+%#x) outside %d bytes", addr, n, len(m.b))
	}
	return m.b[addr : addr+n : addr+n], nil
}

// fakeIRQ counts interrupts per queue and wakes waiters.
type fakeIRQ struct {
	mu     sync.Mutex
	counts map[int]int
	cond   *sync.Cond
}

func newFakeIRQ() *fakeIRQ {
	f := &fakeIRQ{counts: map[int]int{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *fakeIRQ) Signal(q int) {
	f.mu.Lock()
	f.counts[q]++
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *fakeIRQ) ConfigChanged() {}

const (
	mockQueueSize = 64
	rxBufSize     = 4096     // Linux posts PAGE_SIZE RX buffers
	txBufSize     = 32 << 10 // and writes up to 32 KiB per TX buffer
	memSize       = 128 << 20
)

// mockQueue is the driver's view of one virtqueue: descriptor i always
// points at buffer slot i, so buffers are reused without an allocator.
type mockQueue struct {
	desc, avail, used uint64
	bufBase, bufSize  uint64
	availIdx          uint16 // next avail index the driver writes
	usedSeen          uint16 // used entries consumed
	free              []uint16
}

type usedElem struct {
	id   uint16
	len  uint32
	data []byte // the buffer (aliasing guest memory)
}

type mockDriver struct {
	t      testing.TB
	mem    *fakeMem
	dev    *Device
	queues []*virtio.Queue
	mq     []*mockQueue
	notify []virtio.Notifier
	irq    *fakeIRQ
	next   uint64 // bump allocator
	ctrl   []controlMsg
}

func (m *mockDriver) allocate(n, align uint64) uint64 {
	m.next = (m.next + align - 1) &^ (align - 1)
	a := m.next
	m.next += n
	if m.next > uint64(len(m.mem.b)) {
		m.t.Fatalf("mock driver out of guest memory")
	}
	return a
}

// newMockDriver negotiates features, lays out every queue and
// activates the device, as a driver's probe does.
func newMockDriver(t testing.TB, dev *Device, features uint64) *mockDriver {
	t.Helper()
	m := &mockDriver{t: t, mem: &fakeMem{b: make([]byte, memSize)}, dev: dev, irq: newFakeIRQ(), next: 4096}
	for i, max := range dev.QueueSizes() {
		n := min(uint16(mockQueueSize), max)
		cfg := virtio.NewQueueConfig(i, max)
		mq := &mockQueue{
			desc:  m.allocate(16*uint64(n), 16),
			avail: m.allocate(6+2*uint64(n), 4),
			used:  m.allocate(6+8*uint64(n), 4),
		}
		mq.bufSize = rxBufSize
		if i%2 == 1 { // tx and control tx
			mq.bufSize = txBufSize
		}
		mq.bufBase = m.allocate(uint64(n)*mq.bufSize, 4096)
		for d := uint16(0); d < n; d++ {
			mq.free = append(mq.free, d)
		}
		cfg.SetSize(n)
		cfg.SetDescAddr(mq.desc)
		cfg.SetAvailAddr(mq.avail)
		cfg.SetUsedAddr(mq.used)
		cfg.SetReady(true)
		q, err := cfg.Activate(m.mem, features|virtio.FeatureVersion1)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		m.queues = append(m.queues, q)
		m.mq = append(m.mq, mq)
		m.notify = append(m.notify, virtio.Notifier{FD: fd})
	}
	err := dev.Activate(virtio.ActivateContext{Mem: m.mem, Features: features | virtio.FeatureVersion1,
		Queues: m.queues, Notifiers: m.notify, Interrupt: m.irq})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// add posts one buffer: readable data, or a writable buffer of size n.
func (m *mockDriver) add(qi int, data []byte, writable int) bool {
	mq := m.mq[qi]
	if len(mq.free) == 0 {
		return false
	}
	d := mq.free[0]
	mq.free = mq.free[1:]
	addr := mq.bufBase + uint64(d)*mq.bufSize
	var flags uint16
	length := uint32(len(data))
	if data == nil {
		flags, length = 2, uint32(writable) // VIRTQ_DESC_F_WRITE
	} else {
		buf, _ := m.mem.Slice(addr, uint64(len(data)))
		copy(buf, data)
	}
	desc, _ := m.mem.Slice(mq.desc+16*uint64(d), 16)
	binary.LittleEndian.PutUint64(desc[0:], addr)
	binary.LittleEndian.PutUint32(desc[8:], length)
	binary.LittleEndian.PutUint16(desc[12:], flags)
	binary.LittleEndian.PutUint16(desc[14:], 0)
	size := uint16(len(m.mqFreeCap(qi)))
	avail, _ := m.mem.Slice(mq.avail, 6+2*uint64(size))
	binary.LittleEndian.PutUint16(avail[4+2*int(mq.availIdx%size):], d)
	mq.availIdx++
	virtio.Store16(avail, 2, mq.availIdx) // publish after the entry
	return true
}

// mqFreeCap returns a slice as long as the queue size (for modulo).
func (m *mockDriver) mqFreeCap(qi int) []struct{} {
	return make([]struct{}, m.queues[qi].Size())
}

func (m *mockDriver) kick(qi int) {
	var one [8]byte
	binary.LittleEndian.PutUint64(one[:], 1)
	unix.Write(m.notify[qi].FD, one[:])
}

// reap returns the used entries since the last call, recycling their
// descriptors.
func (m *mockDriver) reap(qi int) []usedElem {
	mq := m.mq[qi]
	size := m.queues[qi].Size()
	used, _ := m.mem.Slice(mq.used, 6+8*uint64(size))
	idx := virtio.Load16(used, 2)
	var out []usedElem
	for mq.usedSeen != idx {
		e := used[4+8*int(mq.usedSeen%size):]
		id := uint16(binary.LittleEndian.Uint32(e[0:]))
		n := binary.LittleEndian.Uint32(e[4:])
		buf, _ := m.mem.Slice(mq.bufBase+uint64(id)*mq.bufSize, uint64(min(n, uint32(mq.bufSize))))
		out = append(out, usedElem{id: id, len: n, data: buf})
		mq.free = append(mq.free, id)
		mq.usedSeen++
	}
	return out
}

// waitFor polls until cond holds, failing the test after a deadline.
func (m *mockDriver) waitFor(what string, cond func() bool) {
	m.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			m.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// --- control protocol, the way Linux's driver speaks it ---

// fillControl posts control RX buffers.
func (m *mockDriver) fillControl() {
	for m.add(ctrlRxQueue, nil, rxBufSize) {
	}
	m.kick(ctrlRxQueue)
}

// send writes one control message to the device.
func (m *mockDriver) send(id uint32, event, value uint16) {
	m.t.Helper()
	m.reap(ctrlTxQueue)
	if !m.add(ctrlTxQueue, controlMsg{id: id, event: event, value: value}.encode(), 0) {
		m.t.Fatal("control tx queue full")
	}
	m.kick(ctrlTxQueue)
}

// readControl collects messages the device sent, reposting buffers.
func (m *mockDriver) readControl() []controlMsg {
	var got []controlMsg
	for _, u := range m.reap(ctrlRxQueue) {
		msg, err := decodeControl(u.data)
		if err != nil {
			m.t.Fatalf("device sent a bad control message: %v", err)
		}
		msg.payload = append([]byte(nil), u.data[controlHeaderSize:]...)
		got = append(got, msg)
	}
	if len(got) > 0 {
		m.fillControl()
	}
	m.ctrl = append(m.ctrl, got...)
	return got
}

// expectControl waits until the device has sent every wanted message
// (in order, among others) and returns all it sent meanwhile.
func (m *mockDriver) expectControl(want ...controlMsg) {
	m.t.Helper()
	i := 0
	m.waitFor(fmt.Sprintf("control messages %v", want), func() bool {
		for _, g := range m.readControl() {
			if i < len(want) && g.id == want[i].id && g.event == want[i].event && g.value == want[i].value &&
				(want[i].payload == nil || string(g.payload) == string(want[i].payload)) {
				i++
			}
		}
		return i == len(want)
	})
}

// handshake runs DEVICE_READY → PORT_ADD → PORT_READY for every port.
func (m *mockDriver) handshake(ids ...uint32) {
	m.t.Helper()
	m.fillControl()
	m.send(0, eventDeviceReady, 1)
	var adds []controlMsg
	for _, id := range ids {
		adds = append(adds, controlMsg{id: id, event: eventPortAdd, value: 1})
	}
	m.expectControl(adds...)
	for _, id := range ids {
		m.fillRX(id)
		m.send(id, eventPortReady, 1)
	}
}

// fillRX posts PAGE_SIZE RX buffers for a port, as add_inbuf does.
func (m *mockDriver) fillRX(id uint32) {
	qi := rxQueueIndex(id)
	for m.add(qi, nil, rxBufSize) {
	}
	m.kick(qi)
}

// open and close the port from the guest side.
func (m *mockDriver) open(id uint32)  { m.send(id, eventPortOpen, 1) }
func (m *mockDriver) close(id uint32) { m.send(id, eventPortOpen, 0) }

// write queues data in TX buffers of up to 32 KiB; it returns how much
// fit in the free TX descriptors (the rest would block in Linux).
func (m *mockDriver) write(id uint32, data []byte) int {
	qi := rxQueueIndex(id) + 1
	m.reap(qi)
	n := 0
	for n < len(data) {
		k := min(len(data)-n, txBufSize)
		if !m.add(qi, data[n:n+k], 0) {
			break
		}
		n += k
	}
	m.kick(qi)
	return n
}

// read takes what the device put in RX buffers and reposts them.
func (m *mockDriver) read(id uint32) []byte {
	qi := rxQueueIndex(id)
	var out []byte
	used := m.reap(qi)
	for _, u := range used {
		out = append(out, u.data[:u.len]...)
	}
	if len(used) > 0 {
		m.fillRX(id)
	}
	return out
}

// --- a host backend on a socketpair the test holds the far end of ---

type pairBackend struct {
	id   string
	mu   sync.Mutex
	sink chardev.Sink
	near int          // the device's end of the current connection
	conn chardev.Conn // over near
}

func newPairBackend(id string) *pairBackend { return &pairBackend{id: id, near: -1} }

func (b *pairBackend) ID() string { return b.id }

func (b *pairBackend) Start(_ *chardev.Loop, sink chardev.Sink) error {
	b.mu.Lock()
	b.sink = sink
	b.mu.Unlock()
	return nil
}

// connect makes a new connection and returns the host peer's fd.
func (b *pairBackend) connect(t testing.TB) int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.hand(fds[0])
	return fds[1]
}

// hand gives the port a socket connection over the device's end fd.
func (b *pairBackend) hand(fd int) {
	b.mu.Lock()
	b.near, b.conn = fd, chardev.NewStreamConn(fd)
	sink, c := b.sink, b.conn
	b.mu.Unlock()
	sink.Connected(c)
}

func (b *pairBackend) Drop(c chardev.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c == b.conn && c != nil {
		unix.Close(b.near)
		b.near, b.conn = -1, nil
	}
}

func (b *pairBackend) Close() error { return nil }

// rig is a running device with its loop and mock driver.
type rig struct {
	*mockDriver
	loop *chardev.Loop
	dev  *Device
	be   map[string]*pairBackend
}

// newRig builds a device with one pairBackend per named port.
func newRig(t testing.TB, maxPorts int, ports ...PortConfig) *rig {
	t.Helper()
	loop, err := chardev.NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	go loop.Run()
	t.Cleanup(loop.Close)
	r := &rig{loop: loop, be: map[string]*pairBackend{}}
	for i := range ports {
		if ports[i].Backend == nil {
			b := newPairBackend(ports[i].Name)
			r.be[ports[i].Name] = b
			ports[i].Backend = b
		}
	}
	dev, err := New(Config{MaxPorts: maxPorts, Ports: ports, Loop: loop})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	r.dev = dev
	r.mockDriver = newMockDriver(t, dev, FeatureMultiport)
	return r
}

// stats returns one port's snapshot.
func (r *rig) stats(id uint32) PortStats {
	for _, s := range r.dev.Stats() {
		if s.ID == id {
			return s
		}
	}
	r.t.Fatalf("no port %d", id)
	return PortStats{}
}

// pattern is soak's checkable stream, the one the end-to-end tests use.
func pattern(off, n int) []byte { return soak.Pattern(int64(off), int64(n)) }

// readAll reads from a non-blocking fd until n bytes or a deadline.
func readAll(t *testing.T, fd, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		k, err := unix.Read(fd, buf[:min(len(buf), n-len(out))])
		if k > 0 {
			out = append(out, buf[:k]...)
			continue
		}
		if err != nil && err != unix.EAGAIN {
			t.Fatalf("host read: %v", err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return out
}
