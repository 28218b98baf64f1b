package virtio

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Guest memory is shared with vCPUs that run concurrently, so the ring
// indices are accessed with sync/atomic. It has no 16-bit operations:
// a u16 index is loaded through the naturally aligned 4-byte word that
// holds it, when that word lies inside the ring's slice. Otherwise (a
// 2-aligned ring whose index sits in the upper half of a word that
// straddles the ring's end) the load is a plain 16-bit load after a full
// fence, which on amd64 (TSO, aligned 16-bit loads are single-copy
// atomic) is equivalent to an acquire load. Words are read as
// little-endian, which is what the host (amd64) is.

// fenceWord is the target of the read-modify-write used as a full fence.
var fenceWord atomic.Uint32

// fence is a full (store-load) barrier: LOCK XADD on amd64.
func fence() { fenceWord.Add(0) }

// word32 returns the 4-byte word at b[off:off+4] as an atomic target,
// or nil if it is not 4-aligned in host memory or not inside b.
func word32(b []byte, off int) *uint32 {
	if off < 0 || off+4 > len(b) {
		return nil
	}
	p := unsafe.Pointer(&b[off])
	if uintptr(p)%4 != 0 {
		return nil
	}
	return (*uint32)(p)
}

// load16 is an acquire load of the little-endian u16 at b[off:].
func load16(b []byte, off int) uint16 {
	if off%2 == 0 {
		// The containing word starts at off or off-2, depending on the
		// host address of b[off].
		if w := word32(b, off); w != nil {
			return uint16(atomic.LoadUint32(w))
		}
		if w := word32(b, off-2); w != nil {
			return uint16(atomic.LoadUint32(w) >> 16)
		}
	}
	fence()
	return binary.LittleEndian.Uint16(b[off:])
}

// store32 is a release store (and, on amd64, a full fence: XCHG) of the
// little-endian u32 at b[off:]. Without host alignment it falls back to a
// plain store followed by a fence.
func store32(b []byte, off int, v uint32) {
	if w := word32(b, off); w != nil {
		atomic.StoreUint32(w, v)
		return
	}
	fence()
	binary.LittleEndian.PutUint32(b[off:], v)
	fence()
}
