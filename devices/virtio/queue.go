package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Ring flags (virtio 1.2 §2.7.7, §2.7.10).
const (
	availFNoInterrupt = 1
	usedFNoNotify     = 1
)

// maxQueueSize is the largest split virtqueue (virtio 1.2 §2.7).
const maxQueueSize = 1 << 15

// ErrBroken is wrapped by every error from a queue the guest broke.
var ErrBroken = errors.New("virtqueue broken")

// Queue is a split virtqueue (virtio 1.2 §2.7) in guest memory. The
// transport configures it from vCPU threads; after Activate the device
// pops and pushes from its own goroutine. Chains are never read twice:
// their buffers alias guest memory, and the guest's descriptor table and
// avail ring are never written.
type Queue struct {
	index   int
	maxSize uint16

	mu sync.Mutex
	// Driver configuration; guarded by mu.
	size                          uint16
	descAddr, availAddr, usedAddr uint64
	ready                         bool

	// Ring state, valid while active; guarded by mu.
	active             bool
	mem                Memory
	desc, avail, used  []byte
	eventIdx, indirect bool
	lastAvail          uint16 // next avail ring entry to pop
	usedIdx            uint16 // shadow of used->idx
	usedFlags          uint16 // shadow of used->flags
	signalled          uint16 // usedIdx at the last NeedsInterrupt
	notify             bool   // notifications wanted
	inflight           int    // chains popped, not pushed
	gen                uint64 // bumped by Reset; stale chains carry an old one
	free               []*Chain
	broken             error
}

// NewQueue returns queue index with room for maxSize descriptors.
func NewQueue(index int, maxSize uint16) *Queue {
	return &Queue{index: index, maxSize: maxSize, size: maxSize, notify: true}
}

// Index is the queue's number within its device.
func (q *Queue) Index() int { return q.index }

// MaxSize is the largest size the driver may choose.
func (q *Queue) MaxSize() uint16 { return q.maxSize }

func (q *Queue) locked(f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f()
}

// Size is the number of descriptors the driver chose.
func (q *Queue) Size() (n uint16) { q.locked(func() { n = q.size }); return }

// SetSize records the driver's queue size; Activate validates it.
func (q *Queue) SetSize(n uint16) { q.locked(func() { q.size = n }) }

// SetDescAddr records the guest address of the descriptor table.
func (q *Queue) SetDescAddr(a uint64) { q.locked(func() { q.descAddr = a }) }

// SetAvailAddr records the guest address of the avail (driver) ring.
func (q *Queue) SetAvailAddr(a uint64) { q.locked(func() { q.availAddr = a }) }

// SetUsedAddr records the guest address of the used (device) ring.
func (q *Queue) SetUsedAddr(a uint64) { q.locked(func() { q.usedAddr = a }) }

// DescAddr is the guest address of the descriptor table.
func (q *Queue) DescAddr() (a uint64) { q.locked(func() { a = q.descAddr }); return }

// AvailAddr is the guest address of the avail ring.
func (q *Queue) AvailAddr() (a uint64) { q.locked(func() { a = q.availAddr }); return }

// UsedAddr is the guest address of the used ring.
func (q *Queue) UsedAddr() (a uint64) { q.locked(func() { a = q.usedAddr }); return }

// SetReady records whether the driver enabled the queue.
func (q *Queue) SetReady(r bool) { q.locked(func() { q.ready = r }) }

// Ready reports whether the driver enabled the queue.
func (q *Queue) Ready() (r bool) { q.locked(func() { r = q.ready }); return }

// Broken returns why the guest broke the queue, or nil.
func (q *Queue) Broken() (err error) { q.locked(func() { err = q.broken }); return }

// Activate maps the rings of a ready queue; features are the negotiated
// ones (event idx and indirect descriptors are honoured).
func (q *Queue) Activate(mem Memory, features uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ready {
		return fmt.Errorf("queue %d: activated while not ready", q.index)
	}
	n := uint64(q.size)
	if n == 0 || n&(n-1) != 0 || n > uint64(q.maxSize) {
		return fmt.Errorf("queue %d: size %d is not a power of 2 in [1, %d]", q.index, n, q.maxSize)
	}
	desc, err := ringArea(mem, "descriptor table", q.descAddr, descSize*n, 16)
	if err != nil {
		return fmt.Errorf("queue %d: %w", q.index, err)
	}
	avail, err := ringArea(mem, "avail ring", q.availAddr, 6+2*n, 2)
	if err != nil {
		return fmt.Errorf("queue %d: %w", q.index, err)
	}
	used, err := ringArea(mem, "used ring", q.usedAddr, 6+8*n, 4)
	if err != nil {
		return fmt.Errorf("queue %d: %w", q.index, err)
	}
	q.resetRing()
	q.active, q.mem, q.desc, q.avail, q.used = true, mem, desc, avail, used
	q.eventIdx = features&FeatureRingEventIdx != 0
	q.indirect = features&FeatureRingIndirectDesc != 0
	return nil
}

func ringArea(mem Memory, what string, addr, n, align uint64) ([]byte, error) {
	if addr%align != 0 {
		return nil, fmt.Errorf("%s at %#x is not %d-byte aligned", what, addr, align)
	}
	b, err := mem.Slice(addr, n)
	if err != nil {
		return nil, fmt.Errorf("%s at %#x+%#x: %w", what, addr, n, err)
	}
	return b, nil
}

// Reset returns the queue to its power-on state. Chains popped before
// are stale: PushUsed rejects them.
func (q *Queue) Reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.size, q.descAddr, q.availAddr, q.usedAddr, q.ready = q.maxSize, 0, 0, 0, false
	q.resetRing()
}

// resetRing forgets the ring state; mu must be held.
func (q *Queue) resetRing() {
	q.active, q.mem, q.desc, q.avail, q.used = false, nil, nil, nil, nil
	q.eventIdx, q.indirect = false, false
	q.lastAvail, q.usedIdx, q.usedFlags, q.signalled = 0, 0, 0, 0
	q.notify, q.inflight, q.broken = true, 0, nil
	q.gen++
}

// fail marks the queue broken (logging the first reason) and returns the
// error every later call gets; mu must be held.
func (q *Queue) fail(reason error) error {
	if q.broken == nil {
		q.broken = fmt.Errorf("queue %d: %w: %w", q.index, ErrBroken, reason)
		slog.Error("virtio queue broken", "queue", q.index, "reason", reason)
	}
	return q.broken
}

// usable reports why the device may not use the ring; mu must be held.
func (q *Queue) usable() error {
	switch {
	case q.broken != nil:
		return q.broken
	case !q.active:
		return fmt.Errorf("queue %d: not activated", q.index)
	}
	return nil
}

// availIdx is an acquire load of avail->idx; mu must be held.
func (q *Queue) availIdx() uint16 { return Load16(q.avail, 2) }

// Pop returns the next available chain, (nil, nil) when there is none.
// A malformed chain breaks the queue: this and every later call fail.
func (q *Queue) Pop() (*Chain, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.usable(); err != nil {
		return nil, err
	}
	idx := q.availIdx()
	if idx == q.lastAvail && q.eventIdx && q.notify {
		// The avail_event store of the previous Pop must be visible
		// before we conclude the ring is empty, or a kick may be lost.
		fence()
		idx = q.availIdx()
	}
	pending := idx - q.lastAvail
	switch {
	case pending == 0:
		return nil, nil
	case pending > q.size:
		return nil, q.fail(fmt.Errorf("avail idx moved from %d to %d, more than the queue size %d", q.lastAvail, idx, q.size))
	case q.inflight >= int(q.size):
		return nil, q.fail(fmt.Errorf("more than %d chains in flight (a head offered twice?)", q.size))
	}
	slot := q.lastAvail % q.size
	head := binary.LittleEndian.Uint16(q.avail[4+2*int(slot):])
	if head >= q.size {
		return nil, q.fail(fmt.Errorf("avail ring entry %d: head %d out of range (queue size %d)", slot, head, q.size))
	}
	c := q.newChain()
	w := walker{mem: q.mem, indirect: q.indirect, c: c}
	if err := w.walk(q.desc, int(q.size), head); err != nil {
		q.recycle(c)
		return nil, q.fail(err)
	}
	c.Head, c.q, c.gen = head, q, q.gen
	q.lastAvail++
	q.inflight++
	if q.eventIdx && q.notify {
		q.setAvailEvent(q.lastAvail)
	}
	return c, nil
}

// newChain takes an empty chain from the free list; mu must be held.
func (q *Queue) newChain() *Chain {
	if n := len(q.free); n > 0 {
		c := q.free[n-1]
		q.free = q.free[:n-1]
		return c
	}
	return new(Chain)
}

// recycle empties c (keeping its slices' storage) for a later Pop; mu
// must be held. The free list never exceeds the queue size.
func (q *Queue) recycle(c *Chain) {
	clear(c.Readable)
	clear(c.Writable)
	*c = Chain{Readable: c.Readable[:0], Writable: c.Writable[:0]}
	if len(q.free) < int(q.maxSize) {
		q.free = append(q.free, c)
	}
}

// PushUsed returns a popped chain to the driver with written bytes in
// its writable buffers, publishing the used idx with a release store.
// c must not be used afterwards.
func (q *Queue) PushUsed(c *Chain, written uint32) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case c == nil || c.q != q:
		return fmt.Errorf("queue %d: PushUsed of a chain not popped from this queue", q.index)
	case c.gen != q.gen:
		q.recycle(c)
		return fmt.Errorf("queue %d: PushUsed of a chain popped before a reset", q.index)
	case written > c.WritableLen:
		return fmt.Errorf("queue %d: PushUsed of %d bytes into a chain with %d writable", q.index, written, c.WritableLen)
	}
	if err := q.usable(); err != nil {
		q.recycle(c)
		return err
	}
	e := q.used[4+8*int(q.usedIdx%q.size):]
	binary.LittleEndian.PutUint32(e[0:], uint32(c.Head))
	binary.LittleEndian.PutUint32(e[4:], written)
	q.usedIdx++
	q.inflight--
	q.publishUsed()
	q.recycle(c)
	return nil
}

// publishUsed stores used->flags and used->idx (one aligned word, both
// owned by the device) with a full fence; mu must be held.
func (q *Queue) publishUsed() {
	store32(q.used, 0, uint32(q.usedFlags)|uint32(q.usedIdx)<<16)
}

// setAvailEvent writes avail_event, which follows the used ring; mu must
// be held. An atomic store the driver may read at any time.
func (q *Queue) setAvailEvent(v uint16) {
	Store16(q.used, 4+8*int(q.size), v)
}

// NeedsInterrupt reports whether the driver wants an interrupt for the
// chains pushed since the previous call. Each call closes a window (like
// QEMU's signalled_used): with event idx, the answer is whether used idx
// crossed used_event within it.
func (q *Queue) NeedsInterrupt() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.usable() != nil || q.usedIdx == q.signalled {
		return false
	}
	old, now := q.signalled, q.usedIdx
	q.signalled = now
	// publishUsed fenced the used idx store before these loads.
	if !q.eventIdx {
		return Load16(q.avail, 0)&availFNoInterrupt == 0
	}
	return needEvent(Load16(q.avail, 4+2*int(q.size)), now, old)
}

// needEvent is vring_need_event: has idx crossed event going from old to
// now (mod 2^16)?
func needEvent(event, now, old uint16) bool {
	return now-event-1 < now-old
}

// DisableNotifications asks the driver not to kick: VRING_USED_F_NO_NOTIFY,
// or with event idx, avail_event stops advancing.
func (q *Queue) DisableNotifications() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.usable() != nil || !q.notify {
		return
	}
	q.notify = false
	if !q.eventIdx {
		q.usedFlags |= usedFNoNotify
		q.publishUsed()
	}
}

// EnableNotifications asks the driver to kick again and reports whether
// chains arrived meanwhile (the caller must pop them: no kick will come).
func (q *Queue) EnableNotifications() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.usable() != nil {
		return false
	}
	q.notify = true
	if q.eventIdx {
		q.setAvailEvent(q.lastAvail)
	} else {
		q.usedFlags &^= usedFNoNotify
		q.publishUsed()
	}
	fence()
	return q.availIdx() != q.lastAvail
}

// HasAvailable reports whether the driver made chains available that Pop
// has not taken yet (false on a broken or inactive queue).
func (q *Queue) HasAvailable() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.usable() != nil {
		return false
	}
	fence()
	return q.availIdx() != q.lastAvail
}
