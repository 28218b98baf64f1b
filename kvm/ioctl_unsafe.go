package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl numbers are built the way <asm-generic/ioctl.h> builds them.
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2

	kvmio = 0xAE
)

func ioc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | kvmio<<8 | nr
}

func io(nr uintptr) uintptr         { return ioc(iocNone, nr, 0) }
func iow(nr, size uintptr) uintptr  { return ioc(iocWrite, nr, size) }
func ior(nr, size uintptr) uintptr  { return ioc(iocRead, nr, size) }
func iowr(nr, size uintptr) uintptr { return ioc(iocRead|iocWrite, nr, size) }
func sizeOf[T any]() uintptr        { var v T; return unsafe.Sizeof(v) }
func ptr[T any](v *T) uintptr       { return uintptr(unsafe.Pointer(v)) }
func bytesPtr(b []byte) uintptr     { return uintptr(unsafe.Pointer(&b[0])) }

// ioctl issues one ioctl, retrying on EINTR except for KVM_RUN (whose
// EINTR is how a stopped vCPU returns to its caller).
func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		if errno == 0 {
			return r, nil
		}
		if errno == unix.EINTR && req != reqRun {
			continue
		}
		return r, errno
	}
}
