package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"

	"vmm/devices/guestlog"
	"vmm/devices/virtio/ringmem"
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

// QueueConfig is a queue as the driver configures it through the
// transport's registers (size, ring addresses, ready). The transport owns
// it: its methods run under the transport's mu, so it has no lock of its
// own. Activate turns a ready configuration into a Queue, the ring state
// that only the device touches.
type QueueConfig struct {
	index   int
	maxSize uint16

	size                          uint16
	descAddr, availAddr, usedAddr uint64
	ready                         bool
	ring                          *Queue // the last Activate's ring
	// log outlives the rings: a driver that breaks every ring it is
	// given, reset after reset, gets a line per guestlog.Interval.
	log *guestlog.Limiter
}

// Queue is an active split virtqueue (virtio 1.2 §2.7) in guest memory:
// the ring state. Only the device uses it, from one goroutine at a time
// (the device's own lock orders them), so it takes no lock per call.
// A chain's buffers alias guest memory; the guest's descriptor table and
// avail ring are never written. A chain is consumed once: Unpop gives
// back only a chain the device has not used, to be popped (and checked)
// afresh.
type Queue struct {
	index              int
	size               uint16
	mem                Memory
	desc, avail, used  []byte
	eventIdx, indirect bool
	lastAvail          uint16 // next avail ring entry to pop
	usedIdx            uint16 // shadow of used->idx
	usedFlags          uint16 // shadow of used->flags
	signalled          uint16 // usedIdx at the last NeedsInterrupt
	notify             bool   // notifications wanted
	inflight           int    // chains popped, not pushed
	stopped            bool   // the transport reset the queue
	free               []*Chain
	broken             error
	log                *guestlog.Limiter // its configuration's
}

// NewQueueConfig returns the configuration of queue index with room for
// maxSize descriptors.
func NewQueueConfig(index int, maxSize uint16) *QueueConfig {
	return &QueueConfig{index: index, maxSize: maxSize, size: maxSize, log: new(guestlog.Limiter)}
}

// Index is the queue's number within its device.
func (q *QueueConfig) Index() int { return q.index }

// MaxSize is the largest size the driver may choose.
func (q *QueueConfig) MaxSize() uint16 { return q.maxSize }

// Size is the number of descriptors the driver chose.
func (q *QueueConfig) Size() uint16 { return q.size }

// SetSize records the driver's queue size; Activate validates it.
func (q *QueueConfig) SetSize(n uint16) { q.size = n }

// SetDescAddr records the guest address of the descriptor table.
func (q *QueueConfig) SetDescAddr(a uint64) { q.descAddr = a }

// SetAvailAddr records the guest address of the avail (driver) ring.
func (q *QueueConfig) SetAvailAddr(a uint64) { q.availAddr = a }

// SetUsedAddr records the guest address of the used (device) ring.
func (q *QueueConfig) SetUsedAddr(a uint64) { q.usedAddr = a }

// DescAddr is the guest address of the descriptor table.
func (q *QueueConfig) DescAddr() uint64 { return q.descAddr }

// AvailAddr is the guest address of the avail ring.
func (q *QueueConfig) AvailAddr() uint64 { return q.availAddr }

// UsedAddr is the guest address of the used ring.
func (q *QueueConfig) UsedAddr() uint64 { return q.usedAddr }

// SetReady records whether the driver enabled the queue.
func (q *QueueConfig) SetReady(r bool) { q.ready = r }

// Ready reports whether the driver enabled the queue.
func (q *QueueConfig) Ready() bool { return q.ready }

// Activate maps the rings of a ready queue and returns the ring state
// the device will own; features are the negotiated ones (event idx and
// indirect descriptors are honoured).
func (q *QueueConfig) Activate(mem Memory, features uint64) (*Queue, error) {
	if !q.ready {
		return nil, fmt.Errorf("queue %d: activated while not ready", q.index)
	}
	n := uint64(q.size)
	if n == 0 || n&(n-1) != 0 || n > uint64(q.maxSize) {
		return nil, fmt.Errorf("queue %d: size %d is not a power of 2 in [1, %d]", q.index, n, q.maxSize)
	}
	desc, err := ringArea(mem, "descriptor table", q.descAddr, descSize*n, 16)
	if err != nil {
		return nil, fmt.Errorf("queue %d: %w", q.index, err)
	}
	avail, err := ringArea(mem, "avail ring", q.availAddr, 6+2*n, 2)
	if err != nil {
		return nil, fmt.Errorf("queue %d: %w", q.index, err)
	}
	used, err := ringArea(mem, "used ring", q.usedAddr, 6+8*n, 4)
	if err != nil {
		return nil, fmt.Errorf("queue %d: %w", q.index, err)
	}
	q.stopRing()
	q.ring = &Queue{index: q.index, size: q.size, mem: mem, desc: desc, avail: avail, used: used, log: q.log,
		eventIdx: features&FeatureRingEventIdx != 0, indirect: features&FeatureRingIndirectDesc != 0, notify: true}
	return q.ring, nil
}

// Reset returns the configuration to its power-on state and stops the
// last ring: chains popped from it are stale, and PushUsed rejects them.
// The transport calls it after the device's Reset, when the device no
// longer uses the ring.
func (q *QueueConfig) Reset() {
	q.size, q.descAddr, q.availAddr, q.usedAddr, q.ready = q.maxSize, 0, 0, 0, false
	q.stopRing()
}

func (q *QueueConfig) stopRing() {
	if q.ring != nil {
		q.ring.stopped = true
		q.ring = nil
	}
}

// Index is the queue's number within its device.
func (q *Queue) Index() int { return q.index }

// Size is the number of descriptors in the ring.
func (q *Queue) Size() uint16 { return q.size }

// Broken returns why the guest broke the queue, or nil.
func (q *Queue) Broken() error { return q.broken }

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

// fail marks the queue broken (logging the first reason, rate-limited:
// a reset makes a new queue the guest can break again) and returns the
// error every later call gets.
func (q *Queue) fail(reason error) error {
	if q.broken == nil {
		q.broken = fmt.Errorf("queue %d: %w: %w", q.index, ErrBroken, reason)
		q.log.Error("virtio queue broken", "queue", q.index, "reason", reason)
	}
	return q.broken
}

// usable reports why the device may not use the ring.
func (q *Queue) usable() error {
	switch {
	case q.broken != nil:
		return q.broken
	case q.stopped:
		return fmt.Errorf("queue %d: reset", q.index)
	}
	return nil
}

// availIdx is an acquire load of avail->idx.
func (q *Queue) availIdx() uint16 { return ringmem.Load16(q.avail, 2) }

// Pop returns the next available chain, (nil, nil) when there is none.
// A malformed chain breaks the queue: this and every later call fail.
func (q *Queue) Pop() (*Chain, error) {
	if err := q.usable(); err != nil {
		return nil, err
	}
	idx := q.availIdx()
	if idx == q.lastAvail && q.eventIdx && q.notify {
		// The avail_event store of the previous Pop must be visible
		// before we conclude the ring is empty, or a kick may be lost.
		ringmem.Fence()
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
	c.Head, c.q = head, q
	q.lastAvail++
	q.inflight++
	if q.eventIdx && q.notify {
		q.setAvailEvent(q.lastAvail)
	}
	return c, nil
}

// Unpop gives back c, the most recently popped chain, unused: the next
// Pop returns the same head again. A device that popped ahead to write
// or read several chains in one system call returns the ones the host
// did not reach, in the reverse order of their Pops. c must not be used
// afterwards.
func (q *Queue) Unpop(c *Chain) error {
	if c == nil || c.q != q {
		return fmt.Errorf("queue %d: Unpop of a chain not popped from this queue", q.index)
	}
	if err := q.usable(); err != nil {
		q.recycle(c)
		return err
	}
	if q.inflight == 0 || binary.LittleEndian.Uint16(q.avail[4+2*int((q.lastAvail-1)%q.size):]) != c.Head {
		return fmt.Errorf("queue %d: Unpop of head %d, which is not the last chain popped", q.index, c.Head)
	}
	q.lastAvail--
	q.inflight--
	if q.eventIdx && q.notify {
		// avail_event back where Pop had it: the driver kicks for the
		// next chain it adds, as if this one had never been taken.
		q.setAvailEvent(q.lastAvail)
	}
	q.recycle(c)
	return nil
}

// newChain takes an empty chain from the free list.
func (q *Queue) newChain() *Chain {
	if n := len(q.free); n > 0 {
		c := q.free[n-1]
		q.free = q.free[:n-1]
		return c
	}
	return new(Chain)
}

// recycle empties c (keeping its slices' storage) for a later Pop. The
// free list never exceeds the queue size.
func (q *Queue) recycle(c *Chain) {
	clear(c.Readable)
	clear(c.Writable)
	*c = Chain{Readable: c.Readable[:0], Writable: c.Writable[:0]}
	if len(q.free) < int(q.size) {
		q.free = append(q.free, c)
	}
}

// PushUsed returns a popped chain to the driver with written bytes in
// its writable buffers, publishing the used idx with a release store.
// c must not be used afterwards.
func (q *Queue) PushUsed(c *Chain, written uint32) error {
	switch {
	case c == nil || c.q != q:
		return fmt.Errorf("queue %d: PushUsed of a chain not popped from this queue", q.index)
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
// owned by the device) with a full fence.
func (q *Queue) publishUsed() {
	ringmem.Store32(q.used, 0, uint32(q.usedFlags)|uint32(q.usedIdx)<<16)
}

// setAvailEvent writes avail_event, which follows the used ring: an
// atomic store the driver may read at any time.
func (q *Queue) setAvailEvent(v uint16) {
	ringmem.Store16(q.used, 4+8*int(q.size), v)
}

// NeedsInterrupt reports whether the driver wants an interrupt for the
// chains pushed since the previous call. Each call closes a window (like
// QEMU's signalled_used): with event idx, the answer is whether used idx
// crossed used_event within it.
func (q *Queue) NeedsInterrupt() bool {
	if q.usable() != nil || q.usedIdx == q.signalled {
		return false
	}
	old, now := q.signalled, q.usedIdx
	q.signalled = now
	// publishUsed fenced the used idx store before these loads.
	if !q.eventIdx {
		return ringmem.Load16(q.avail, 0)&availFNoInterrupt == 0
	}
	return needEvent(ringmem.Load16(q.avail, 4+2*int(q.size)), now, old)
}

// needEvent is vring_need_event: has idx crossed event going from old to
// now (mod 2^16)?
func needEvent(event, now, old uint16) bool {
	return now-event-1 < now-old
}

// DisableNotifications asks the driver not to kick: VRING_USED_F_NO_NOTIFY,
// or with event idx, avail_event stops advancing.
func (q *Queue) DisableNotifications() {
	if q.usable() != nil || !q.notify {
		return
	}
	q.notify = false
	if !q.eventIdx {
		q.usedFlags |= usedFNoNotify
		q.publishUsed()
	}
}

// SuppressNotifications asks the driver not to kick even for its next
// chain: with event idx, avail_event goes one behind the chains taken,
// which the driver's next publish does not cross (DisableNotifications
// leaves it where it was, which that publish crosses once). For a
// device about to poll the ring; EnableNotifications undoes it.
func (q *Queue) SuppressNotifications() {
	if q.usable() != nil {
		return
	}
	q.DisableNotifications()
	if q.eventIdx {
		q.setAvailEvent(q.lastAvail - 1)
	}
}

// EnableNotifications asks the driver to kick again and reports whether
// chains arrived meanwhile (the caller must pop them: no kick will come).
func (q *Queue) EnableNotifications() bool {
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
	ringmem.Fence()
	return q.availIdx() != q.lastAvail
}

// PopOrEnableNotification is the one consumer step every device uses:
// the next chain, or — when there is none — notifications enabled again
// and a last look (a chain the driver made available meanwhile gets no
// kick). (nil, nil) means the queue is empty and the driver will kick.
func (q *Queue) PopOrEnableNotification() (*Chain, error) {
	for {
		c, err := q.Pop()
		if err != nil || c != nil {
			return c, err
		}
		if !q.EnableNotifications() {
			return nil, nil
		}
	}
}

// HasAvailable reports whether the driver made chains available that Pop
// has not taken yet (false on a broken or inactive queue).
func (q *Queue) HasAvailable() bool {
	if q.usable() != nil {
		return false
	}
	ringmem.Fence()
	return q.availIdx() != q.lastAvail
}
