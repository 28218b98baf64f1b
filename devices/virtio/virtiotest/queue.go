// Package virtiotest is the fake virtio driver that device and core
// tests share: guest memory in a byte slice, the driver's side of a split
// virtqueue, an interrupt sink and the status/feature handshake. Tests
// import it; production code must not. It does not import the virtio
// package so that virtio's own (internal) tests can use it too.
package virtiotest

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"vmm/devices/virtio/ringmem"
)

// Mem is guest RAM [0, len(m)) in a byte slice; it is a virtio.Memory.
type Mem []byte

// Slice bounds-checks as real guest memory must.
func (m Mem) Slice(addr, n uint64) ([]byte, error) {
	if addr > uint64(len(m)) || n > uint64(len(m))-addr {
		return nil, fmt.Errorf("guest range [%#x, +%#x) is not RAM", addr, n)
	}
	return m[addr : addr+n : addr+n], nil
}

// BigMem is 4 GiB of lazily backed RAM, for byte-count limits; the test
// is skipped where it cannot be mapped.
func BigMem(t testing.TB) Mem {
	m, err := unix.Mmap(-1, 0, 1<<32, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Skipf("no 4 GiB mapping: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	return m
}

// Descriptor and ring flags (virtio 1.2 §2.7.5, §2.7.7, §2.7.10), spelled
// out here because virtio keeps its own unexported.
const (
	DescFNext         = 1
	DescFWrite        = 2
	DescFIndirect     = 4
	AvailFNoInterrupt = 1
	UsedFNoNotify     = 1
)

// Buf is one buffer of a chain: N bytes, device-writable if Write.
// Data, when set, is copied into a readable buffer (N is then len(Data)).
type Buf struct {
	N     uint32
	Write bool
	Data  []byte
}

// R and W are a readable and a writable buffer of n bytes; Bytes is a
// readable buffer holding b.
func R(n uint32) Buf     { return Buf{N: n} }
func W(n uint32) Buf     { return Buf{N: n, Write: true} }
func Bytes(b []byte) Buf { return Buf{N: uint32(len(b)), Data: b} }

// Layout places one queue in guest memory. Buffers come from [Data,
// DataEnd): with SlotSize 0 from a wrapping bump allocator that fills
// them with a pattern (what core tests want: distinct addresses and
// bytes), otherwise descriptor i's buffer is always the SlotSize bytes
// at Data+i*SlotSize (what streaming tests want: reuse without
// bookkeeping, no fill cost).
type Layout struct {
	Desc, Avail, Used uint64
	Data, DataEnd     uint64
	SlotSize          uint64
}

// Queue is the driver's side of one split virtqueue: it writes the
// descriptor table and the avail ring and reads the used ring, with the
// atomics a concurrent driver's barriers stand for.
type Queue struct {
	Mem Mem
	Layout
	Size     uint16
	Next     uint16   // next descriptor slot Add hands out (wraps)
	AvailIdx uint16   // next avail index the driver publishes
	UsedSeen uint16   // used entries taken so far
	data     uint64   // bump allocator
	chain    []uint16 // by head: the length of the chain in flight there
	inUse    []bool   // by slot: part of a chain in flight
}

// NewQueue is a queue of size entries at l in mem.
func NewQueue(mem Mem, size uint16, l Layout) *Queue {
	return &Queue{Mem: mem, Layout: l, Size: size, data: l.Data, chain: make([]uint16, size), inUse: make([]bool, size)}
}

// QueueConfig is the transport-side queue setup (virtio.QueueConfig),
// as an interface because virtio's own tests import this package.
type QueueConfig interface {
	SetSize(uint16)
	SetDescAddr(uint64)
	SetAvailAddr(uint64)
	SetUsedAddr(uint64)
	SetReady(bool)
}

// Program writes the queue's size and addresses into c and enables it,
// as a driver does before DRIVER_OK.
func (q *Queue) Program(c QueueConfig) {
	c.SetSize(q.Size)
	c.SetDescAddr(q.Desc)
	c.SetAvailAddr(q.Avail)
	c.SetUsedAddr(q.Used)
	c.SetReady(true)
}

// Put16 and Get16 access ring fields the device reads or writes
// concurrently, atomically.
func (q *Queue) Put16(addr uint64, v uint16) { ringmem.Store16(q.Mem, int(addr), v) }
func (q *Queue) Get16(addr uint64) uint16    { return ringmem.Load16(q.Mem, int(addr)) }

// Get32 reads a u32 the device wrote before a used idx already seen.
func (q *Queue) Get32(addr uint64) uint32 { return binary.LittleEndian.Uint32(q.Mem[addr:]) }

// DescAddr is the buffer address in descriptor i of the queue's table.
func (q *Queue) DescAddr(i uint16) uint64 {
	return binary.LittleEndian.Uint64(q.Mem[q.Desc+16*uint64(i):])
}

// Buffer is the buffer descriptor i of the queue's table points at.
func (q *Queue) Buffer(i uint16) []byte {
	d := q.Mem[q.Desc+16*uint64(i):]
	a, n := binary.LittleEndian.Uint64(d), uint64(binary.LittleEndian.Uint32(d[8:]))
	return q.Mem[a : a+n]
}

// SetDesc writes descriptor i of the table at table.
func (q *Queue) SetDesc(table uint64, i uint16, addr uint64, n uint32, flags, next uint16) {
	b := q.Mem[table+16*uint64(i):]
	binary.LittleEndian.PutUint64(b[0:], addr)
	binary.LittleEndian.PutUint32(b[8:], n)
	binary.LittleEndian.PutUint16(b[12:], flags)
	binary.LittleEndian.PutUint16(b[14:], next)
}

// Alloc hands out n bytes of the data area filled with a pattern.
func (q *Queue) Alloc(n uint32) uint64 {
	if q.data+uint64(n) > q.DataEnd {
		q.data = q.Data
	}
	a := q.data
	q.data += (uint64(n) + 15) &^ 15
	for i := range n {
		q.Mem[a+uint64(i)] = byte(a) + byte(i)
	}
	return a
}

// Offer publishes head in the avail ring and bumps avail idx with a
// release store, as a concurrent driver must.
func (q *Queue) Offer(head uint16) {
	// A plain store: the idx store below publishes it (a CAS on the
	// entry's word would also rewrite the neighbouring entry).
	binary.LittleEndian.PutUint16(q.Mem[q.Avail+4+2*uint64(q.AvailIdx%q.Size):], head)
	q.AvailIdx++
	q.Put16(q.Avail+2, q.AvailIdx)
}

// Link writes bufs as a chain in table starting at slot first; slots
// wrap at n.
func (q *Queue) Link(table uint64, first, n uint16, bufs []Buf) {
	for k, b := range bufs {
		i := (first + uint16(k)) % n
		var flags uint16
		if b.Write {
			flags |= DescFWrite
		}
		next := (i + 1) % n
		if k < len(bufs)-1 {
			flags |= DescFNext
		} else {
			next = 0
		}
		var addr uint64
		if q.SlotSize != 0 && table == q.Desc {
			if uint64(b.N) > q.SlotSize {
				panic(fmt.Sprintf("virtiotest: %d-byte buffer in %d-byte slots", b.N, q.SlotSize))
			}
			addr = q.Data + uint64(i)*q.SlotSize
		} else {
			addr = q.Alloc(b.N)
		}
		if b.Data != nil {
			copy(q.Mem[addr:addr+uint64(b.N)], b.Data)
		}
		q.SetDesc(table, i, addr, b.N, flags, next)
	}
}

// Add offers a direct chain in the next slots and returns its head. It
// hands slots out round-robin whether or not the device has returned
// them: tests that break rings on purpose need that.
func (q *Queue) Add(bufs ...Buf) uint16 {
	head := q.Next
	q.Link(q.Desc, head, q.Size, bufs)
	q.Next = (head + uint16(len(bufs))) % q.Size
	q.hold(head, uint16(len(bufs)))
	q.Offer(head)
	return head
}

// hold marks n slots from head in flight.
func (q *Queue) hold(head, n uint16) {
	q.chain[head] = n
	for k := range n {
		q.inUse[(head+k)%q.Size] = true
	}
}

// TryAdd is Add for a driver that waits for the device: it refuses (ok
// false) while the slots the chain needs are still in flight.
func (q *Queue) TryAdd(bufs ...Buf) (head uint16, ok bool) {
	if len(bufs) > int(q.Size) {
		return 0, false
	}
	for k := range bufs {
		if q.inUse[(q.Next+uint16(k))%q.Size] {
			return 0, false
		}
	}
	return q.Add(bufs...), true
}

// AddIndirect offers a chain held in an indirect table and returns its head.
func (q *Queue) AddIndirect(bufs ...Buf) uint16 {
	n := uint16(len(bufs))
	table := q.Alloc(16 * uint32(n))
	q.Link(table, 0, n, bufs)
	head := q.Next
	q.SetDesc(q.Desc, head, table, 16*uint32(n), DescFIndirect, 0)
	q.Next = (head + 1) % q.Size
	q.hold(head, 1)
	q.Offer(head)
	return head
}

// Used is one entry of the used ring.
type Used struct{ ID, Len uint32 }

// TakeUsed returns the used entries the device published since last
// time, and gives their slots back to TryAdd.
func (q *Queue) TakeUsed() []Used {
	var out []Used
	for idx := q.Get16(q.Used + 2); q.UsedSeen != idx; q.UsedSeen++ {
		e := q.Used + 4 + 8*uint64(q.UsedSeen%q.Size)
		u := Used{q.Get32(e), q.Get32(e + 4)}
		if u.ID < uint32(q.Size) {
			for k := range q.chain[u.ID] {
				q.inUse[(uint16(u.ID)+k)%q.Size] = false
			}
			q.chain[u.ID] = 0
		}
		out = append(out, u)
	}
	return out
}

// UsedEventAddr and AvailEventAddr are where the event-idx fields live.
func (q *Queue) UsedEventAddr() uint64  { return q.Avail + 4 + 2*uint64(q.Size) }
func (q *Queue) AvailEventAddr() uint64 { return q.Used + 4 + 8*uint64(q.Size) }

// Kick notifies the device through the queue's eventfd, as the
// transport's ioeventfd would.
func Kick(fd int) {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(fd, one[:])
}

// EventFD is a non-blocking eventfd closed when the test ends.
func EventFD(t testing.TB) int {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// EventCount reads (and so clears) an eventfd's counter; 0 if none.
func EventCount(t testing.TB, fd int) uint64 {
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

// Allocator carves queues out of guest memory for a multi-queue device.
type Allocator struct {
	Mem  Mem
	next uint64
}

// NewAllocator allocates from mem, leaving the first page unused.
func NewAllocator(mem Mem) *Allocator { return &Allocator{Mem: mem, next: 4096} }

// Alloc returns n bytes aligned to align.
func (a *Allocator) Alloc(n, align uint64) (uint64, error) {
	a.next = (a.next + align - 1) &^ (align - 1)
	addr := a.next
	if a.next+n > uint64(len(a.Mem)) {
		return 0, fmt.Errorf("virtiotest: %d bytes at %#x: out of guest memory", n, addr)
	}
	a.next += n
	return addr, nil
}

// Queue lays out a queue of size entries with a slot of slotSize bytes
// per descriptor.
func (a *Allocator) Queue(size uint16, slotSize uint64) (*Queue, error) {
	n := uint64(size)
	var l Layout
	var err error
	for _, f := range []struct {
		p           *uint64
		size, align uint64
	}{{&l.Desc, 16 * n, 16}, {&l.Avail, 6 + 2*n, 4}, {&l.Used, 6 + 8*n, 4}, {&l.Data, n * slotSize, 4096}} {
		if *f.p, err = a.Alloc(f.size, f.align); err != nil {
			return nil, err
		}
	}
	l.DataEnd, l.SlotSize = l.Data+n*slotSize, slotSize
	return NewQueue(a.Mem, size, l), nil
}
