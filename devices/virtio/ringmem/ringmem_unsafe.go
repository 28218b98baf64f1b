// Package ringmem accesses the u16 and u32 fields of virtqueue rings in
// guest memory atomically. It is a leaf so that both the virtio core and
// the fake driver in virtiotest (which virtio's own tests import) use the
// same accessors.
package ringmem

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Guest memory is shared with vCPUs that run concurrently, so every ring
// field the other side writes (avail flags, idx and used_event for the
// device; used flags, idx and avail_event for a driver) is accessed with
// sync/atomic. It has no 16-bit operations: a u16 field is accessed
// through the naturally aligned 4-byte word that contains it. For any
// 2-aligned host address that word lies inside one 8-byte-granular Go
// allocation or one mmap'd page, so it may extend past the ring's slice
// without leaving mapped memory; a store rewrites only its own half with
// a compare-and-swap. Split rings are 2-aligned (avail) and 4-aligned
// (used) by spec, and guest RAM is page-aligned, so the odd-address
// fallback (a fenced plain access) is unreachable for real rings. Words
// are little-endian, which is what the host (amd64) is.

// fenceWord is the target of the read-modify-write used as a full fence.
var fenceWord atomic.Uint32

// Fence is a full (store-load) barrier: LOCK XADD on amd64.
func Fence() { fenceWord.Add(0) }

// word32 returns the aligned 4-byte word that contains the u16 at
// b[off:off+2] and the bit shift of that u16 in it, or nil if the host
// address is odd.
func word32(b []byte, off int) (*uint32, uint) {
	_ = b[off : off+2] // bounds check, no access
	p := unsafe.Pointer(&b[off])
	a := uintptr(p)
	if a%2 != 0 {
		return nil, 0
	}
	return (*uint32)(unsafe.Add(p, -int(a%4))), uint(a%4) * 8
}

// Load16 is an acquire load of the little-endian u16 at b[off:], for
// ring fields written concurrently by the other side.
func Load16(b []byte, off int) uint16 {
	w, shift := word32(b, off)
	if w == nil {
		Fence()
		return binary.LittleEndian.Uint16(b[off:])
	}
	return uint16(atomic.LoadUint32(w) >> shift)
}

// Store16 is a release store (and, on amd64, a full fence: LOCK CMPXCHG)
// of the little-endian u16 at b[off:] that leaves the other half of its
// word untouched.
func Store16(b []byte, off int, v uint16) {
	w, shift := word32(b, off)
	if w == nil {
		Fence()
		binary.LittleEndian.PutUint16(b[off:], v)
		Fence()
		return
	}
	for {
		old := atomic.LoadUint32(w)
		nw := old&^(0xffff<<shift) | uint32(v)<<shift
		if atomic.CompareAndSwapUint32(w, old, nw) {
			return
		}
	}
}

// Store32 is a release store (and, on amd64, a full fence: XCHG) of the
// little-endian u32 at b[off:]. Without 4-byte host alignment it falls
// back to two 16-bit stores, low half (flags) first.
func Store32(b []byte, off int, v uint32) {
	_ = b[off : off+4]
	if p := unsafe.Pointer(&b[off]); uintptr(p)%4 == 0 {
		atomic.StoreUint32((*uint32)(p), v)
		return
	}
	Store16(b, off, uint16(v))
	Store16(b, off+2, uint16(v>>16))
}
