package chardev

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"golang.org/x/sys/unix"
)

// fdConn is a connection over non-blocking fds: a file, pipe or stdio
// (input that ends is just exhausted), or a socket or pty (a stream:
// its end, or any failure, means the peer left).
type fdConn struct {
	r, w   int // -1: no such direction
	stream bool
}

// NewFDConn is a connection reading r and writing w (either may be -1),
// whose input may end while its output lives on: files, pipes, stdio.
func NewFDConn(r, w int) Conn { return &fdConn{r: r, w: w} }

// NewStreamConn is a connection over one fd both ways whose end of
// input, or any failure, means the peer left: sockets and ptys.
func NewStreamConn(fd int) Conn { return &fdConn{r: fd, w: fd, stream: true} }

var errNoOutput = errors.New("chardev: connection has no output")

func (c *fdConn) Readv(bufs [][]byte) (int, error) {
	if c.r < 0 {
		return 0, io.EOF
	}
	for {
		n, err := readv(c.r, bufs)
		switch {
		case n > 0:
			return n, nil
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, ErrWouldBlock
		case err == nil && !hasRoom(bufs):
			return 0, nil
		case err == nil && c.stream:
			return 0, ErrPeerGone
		case err == nil:
			return 0, io.EOF
		}
		return 0, c.failed(err)
	}
}

func (c *fdConn) Writev(bufs [][]byte) (int, error) {
	if c.w < 0 {
		return 0, errNoOutput
	}
	for {
		n, err := writev(c.w, bufs)
		switch {
		case err == nil:
			return n, nil
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, ErrWouldBlock
		}
		return 0, c.failed(err)
	}
}

// failed names a failure; on a stream it means the peer is gone (a
// reset, EPIPE, a pty's EIO once its last user closed it).
func (c *fdConn) failed(err error) error {
	if c.stream {
		return fmt.Errorf("%w: %w", ErrPeerGone, err)
	}
	return err
}

func hasRoom(bufs [][]byte) bool {
	for _, b := range bufs {
		if len(b) > 0 {
			return true
		}
	}
	return false
}

func (c *fdConn) Pending() (int, bool) {
	if c.r < 0 {
		return 0, true
	}
	n, err := pendingBytes(c.r)
	return n, err == nil
}

// Salvage reads what a departed stream peer left queued, to its end or
// an error. FIONREAD alone is not enough: a pty's last bytes may not be
// counted yet when its slave closes. A live peer (a port removed under
// it) is read no further than what was queued, or salvageMin. Files and
// FIFOs keep their unread bytes.
func (c *fdConn) Salvage(dst []byte) []byte {
	if !c.stream || c.r < 0 {
		return dst
	}
	limit, _ := pendingBytes(c.r)
	limit = max(limit, salvageMin)
	for got := 0; got < limit; {
		dst = slices.Grow(dst, min(limit-got, 4096))
		k, err := unix.Read(c.r, dst[len(dst):cap(dst)][:min(limit-got, cap(dst)-len(dst))])
		if k <= 0 || err != nil {
			break
		}
		dst, got = dst[:len(dst)+k], got+k
	}
	return dst
}

// salvageMin bounds what Salvage reads where FIONREAD counted less.
const salvageMin = 64 << 10

// Watch adds the read fd for input and hang-ups (and output, when it
// is the same fd) and a separate write fd for output, edge-triggered.
// An fd epoll refuses (a regular file) is always ready: not watched.
func (c *fdConn) Watch(loop *Loop, h func(Ready)) (*ConnWatch, error) {
	cw := &ConnWatch{}
	add := func(slot, fd int, events uint32, can Ready) error {
		w, err := loop.Add(fd, events|unix.EPOLLET, func(got uint32) { h(readiness(got) & can) })
		if errors.Is(err, ErrNotPollable) {
			return nil
		}
		cw.ws[slot] = w
		return err
	}
	var err error
	if c.r >= 0 {
		ev, can := uint32(unix.EPOLLIN|unix.EPOLLRDHUP), Readable
		if c.w == c.r {
			ev, can = ev|unix.EPOLLOUT, Readable|Writable
		}
		err = add(0, c.r, ev, can)
	}
	if err == nil && c.w >= 0 && c.w != c.r {
		err = add(1, c.w, unix.EPOLLOUT, Writable)
	}
	if err != nil {
		cw.Remove()
		return nil, err
	}
	return cw, nil
}

// readiness maps epoll's events: a hang-up or an error lets both
// directions find out (a read sees the end after what came before it).
func readiness(ev uint32) Ready {
	var r Ready
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		r |= Readable
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		r |= Writable
	}
	return r
}
