package chardev

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// readv, writev and the pending-bytes ioctl without an allocation per
// call: x/sys/unix builds a fresh []Iovec for every Readv and Writev,
// and a readv across 64 RX buffers made the GC run every half second
// of a host→guest transfer (and grew vmm's heap). Up to iovStack
// buffers use an array on the stack.

// MaxIovecs is IOV_MAX, the most buffers one Readv or Writev takes.
const MaxIovecs = 1024

const iovStack = 64

// writev writes nothing for an empty list rather than calling the
// kernel; readv returns 0, nil for one (callers tell that from the end
// of input by the room they offered).
func writev(fd int, bufs [][]byte) (int, error) { return rwv(unix.SYS_WRITEV, fd, bufs) }

func readv(fd int, bufs [][]byte) (int, error) { return rwv(unix.SYS_READV, fd, bufs) }

func rwv(trap uintptr, fd int, bufs [][]byte) (int, error) {
	var stack [iovStack]unix.Iovec
	iov := stack[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(iov) == MaxIovecs {
			break
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, nil
	}
	n, _, e := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// pendingBytes is FIONREAD (SIOCINQ): bytes ready to read on fd.
func pendingBytes(fd int) (int, error) {
	var v int32
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCINQ, uintptr(unsafe.Pointer(&v)))
	if e != 0 {
		return 0, e
	}
	return int(v), nil
}
