package machine

import "unsafe"

// hostAddr is the host virtual address of a mapping, for KVM.
func hostAddr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&b[0]))) }
