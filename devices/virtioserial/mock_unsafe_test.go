package virtioserial

import (
	"sync/atomic"
	"unsafe"
)

// The mock driver shares ring indices with the device goroutine; these
// give it the same ordering a real driver gets from its barriers.
func load16(b []byte, off int) uint16 {
	// Rings here are 4-aligned, so the index shares a word with flags.
	w := atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[off&^3])))
	return uint16(w >> (8 * uint(off&3)))
}

func store16(b []byte, off int, v uint16) {
	p := (*uint32)(unsafe.Pointer(&b[off&^3]))
	for {
		old := atomic.LoadUint32(p)
		shift := 8 * uint(off&3)
		nw := old&^(0xffff<<shift) | uint32(v)<<shift
		if atomic.CompareAndSwapUint32(p, old, nw) {
			return
		}
	}
}
