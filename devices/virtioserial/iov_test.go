package virtioserial

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// TestVectoredIONoAllocs: readv and writev across 64 guest-sized buffers
// move the bytes in order and allocate nothing (x/sys/unix's allocate a
// []Iovec per call, which ran the GC through host→guest transfers).
func TestVectoredIONoAllocs(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	for _, fd := range fds {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	const nbuf, size = 64, 1024
	want := pattern(0, nbuf*size)
	out := make([][]byte, nbuf)
	in := make([][]byte, nbuf+1) // with an empty buffer, skipped
	got := make([]byte, nbuf*size)
	for i := range out {
		out[i] = want[i*size : (i+1)*size]
		in[i+1] = got[i*size : (i+1)*size]
	}
	in[0] = got[:0]
	allocs := testing.AllocsPerRun(20, func() {
		clear(got)
		if n, err := writev(fds[0], out); n != len(want) || err != nil {
			t.Fatalf("writev = %d, %v; want %d, nil", n, err, len(want))
		}
		if n, err := pendingBytes(fds[1]); n != len(want) || err != nil {
			t.Fatalf("pendingBytes = %d, %v; want %d, nil", n, err, len(want))
		}
		if n, err := readv(fds[1], in); n != len(want) || err != nil {
			t.Fatalf("readv = %d, %v; want %d, nil", n, err, len(want))
		}
	})
	if !bytes.Equal(got, want) {
		t.Errorf("readv got %d bytes equal to what writev sent, of %d", commonPrefix(got, want), len(want))
	}
	if allocs != 0 {
		t.Errorf("readv+writev+pendingBytes allocated %.1f times per call; want 0", allocs)
	}
	if n, err := writev(fds[0], [][]byte{nil, {}}); n != 0 || err != nil {
		t.Errorf("writev(empty) = %d, %v; want 0, nil", n, err)
	}
	unix.SetNonblock(fds[1], true)
	if n, err := readv(fds[1], in); n != 0 || err != unix.EAGAIN {
		t.Errorf("readv(nothing pending) = %d, %v; want 0, EAGAIN", n, err)
	}
}
