package virtioserial

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vmm/chardev"
	"vmm/devices/virtio"
	"vmm/devices/virtio/virtiotest"
	"vmm/soak"
)

// The mock driver plays Linux's virtio_console driver against the
// device over guest memory in a []byte (virtiotest's driver side of each
// queue), the way QEMU's qtest and rust-vmm's mock queues do: no vCPU,
// real queues, real eventfds, the real event loop and real sockets on
// the host side.

const (
	mockQueueSize = 64
	rxBufSize     = 4096     // Linux posts PAGE_SIZE RX buffers
	txBufSize     = 32 << 10 // and writes up to 32 KiB per TX buffer
	memSize       = 128 << 20
)

// usedElem is one used entry with the buffer it names (aliasing guest
// memory, cut to the length the device wrote).
type usedElem struct {
	id   uint16
	len  uint32
	data []byte
}

type mockDriver struct {
	t      testing.TB
	mem    virtiotest.Mem
	dev    *Device
	queues []*virtio.Queue
	mq     []*virtiotest.Queue
	notify []virtio.Notifier
	irq    *virtiotest.IRQ
	ctrl   []controlMsg
}

// newMockDriver negotiates features, lays out every queue and
// activates the device, as a driver's probe does.
func newMockDriver(t testing.TB, dev *Device, features uint64) *mockDriver {
	t.Helper()
	m := &mockDriver{t: t, mem: make(virtiotest.Mem, memSize), dev: dev, irq: virtiotest.NewIRQ()}
	alloc := virtiotest.NewAllocator(m.mem)
	for i, max := range dev.QueueSizes() {
		slot := uint64(rxBufSize)
		if i%2 == 1 { // tx and control tx
			slot = txBufSize
		}
		mq, err := alloc.Queue(min(uint16(mockQueueSize), max), slot)
		if err != nil {
			t.Fatal(err)
		}
		cfg := virtio.NewQueueConfig(i, max)
		mq.Program(cfg)
		q, err := cfg.Activate(m.mem, features|virtio.FeatureVersion1)
		if err != nil {
			t.Fatal(err)
		}
		m.queues = append(m.queues, q)
		m.mq = append(m.mq, mq)
		m.notify = append(m.notify, virtio.Notifier{FD: virtiotest.EventFD(t)})
	}
	err := dev.Activate(virtio.ActivateContext{Mem: m.mem, Features: features | virtio.FeatureVersion1,
		Queues: m.queues, Notifiers: m.notify, Interrupt: m.irq})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// add posts one buffer: readable data, or a writable buffer of size n.
// It reports false while every descriptor is in flight.
func (m *mockDriver) add(qi int, data []byte, writable int) bool {
	b := virtiotest.Bytes(data)
	if data == nil {
		b = virtiotest.W(uint32(writable))
	}
	_, ok := m.mq[qi].TryAdd(b)
	return ok
}

func (m *mockDriver) kick(qi int) { virtiotest.Kick(m.notify[qi].FD) }

// reap returns the used entries since the last call, recycling their
// descriptors.
func (m *mockDriver) reap(qi int) []usedElem {
	mq := m.mq[qi]
	var out []usedElem
	for _, u := range mq.TakeUsed() {
		buf := mq.Buffer(uint16(u.ID))
		out = append(out, usedElem{id: uint16(u.ID), len: u.Len, data: buf[:min(int(u.Len), len(buf))]})
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

// put queues data in TX buffers and publishes them without a kick: what
// a driver leaves in the avail ring while the device suppresses
// notifications, or what a kick the event loop has not seen yet looks
// like from the device. It returns how much fit.
func (m *mockDriver) put(id uint32, data []byte) int {
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
	return n
}

// write is put and a kick; what did not fit in the free TX descriptors
// would block in Linux.
func (m *mockDriver) write(id uint32, data []byte) int {
	n := m.put(id, data)
	m.kick(rxQueueIndex(id) + 1)
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

// connect makes a new stream connection and returns the host peer's fd.
func (b *pairBackend) connect(t testing.TB) int { return b.connectType(t, unix.SOCK_STREAM) }

// connectType connects over a socketpair of type typ.
func (b *pairBackend) connectType(t testing.TB, typ int) int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
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

// openPort connects name's backend over a socketpair of type typ (the
// host's end is closed when the test ends), runs the handshake for port
// id and opens it in the guest; it returns once the device has seen the
// open, with the host's fd.
func (r *rig) openPort(t testing.TB, name string, id uint32, typ int) int {
	t.Helper()
	host := r.be[name].connectType(t, typ)
	t.Cleanup(func() { unix.Close(host) })
	r.handshake(id)
	r.open(id)
	r.waitFor("port open", func() bool { return r.stats(id).GuestOpen })
	return host
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

// pump writes want from written on to port id while reading host, until
// the host has had want from offset from on or 20 s passed, and returns
// what the host read.
func (r *rig) pump(id uint32, host int, want []byte, written, from int) []byte {
	var got []byte
	buf := make([]byte, 256<<10)
	deadline := time.Now().Add(20 * time.Second)
	for from+len(got) < len(want) && time.Now().Before(deadline) {
		if written < len(want) {
			written += r.write(id, want[written:])
		}
		n, _ := unix.Read(host, buf)
		if n > 0 {
			got = append(got, buf[:n]...)
		} else {
			time.Sleep(100 * time.Microsecond)
		}
	}
	return got
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
