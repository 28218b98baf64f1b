package virtioserial

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// benchRig is a port connected over a socketpair and open in the guest.
func benchRig(b *testing.B) (*rig, int) {
	b.Helper()
	r := newRig(b, 2, PortConfig{Nr: -1, Name: "p"})
	return r, r.openPort(b, "p", 1, unix.SOCK_STREAM)
}

// waitFD blocks until fd is ready for events.
func waitFD(fd int, events int16) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	unix.Poll(fds, 100)
}

// BenchmarkGuestToHost: the guest fills its TX queue with 32 KiB
// buffers and kicks once; the host reads it all (the batched writev
// path).
func BenchmarkGuestToHost(b *testing.B) {
	r, host := benchRig(b)
	data := pattern(0, mockQueueSize*txBufSize)
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for sent := 0; sent < len(data); {
			n := r.write(1, data[sent:])
			sent += n
			for got := 0; got < n; {
				k, err := unix.Read(host, buf)
				if k > 0 {
					got += k
					continue
				}
				if err != unix.EAGAIN {
					b.Fatalf("host read: %v", err)
				}
				waitFD(host, unix.POLLIN)
			}
		}
	}
}

// BenchmarkHostToGuest: the host writes 1 MiB; the guest takes it
// through its posted page-sized RX buffers (the FIONREAD-paced readv
// path).
func BenchmarkHostToGuest(b *testing.B) {
	r, host := benchRig(b)
	data := pattern(0, 1<<20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		got, sent := 0, 0
		for got < len(data) {
			if sent < len(data) {
				n, err := unix.Write(host, data[sent:])
				if n > 0 {
					sent += n
				} else if err != unix.EAGAIN {
					b.Fatalf("host write: %v", err)
				}
			}
			k := len(r.read(1))
			got += k
			if k == 0 {
				runtime.Gosched() // the loop is filling the guest's buffers
			}
		}
	}
}
