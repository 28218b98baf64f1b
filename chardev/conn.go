package chardev

import "errors"

// Conn is one connection to a host peer, as a front end (a guest port,
// COM1) uses it without knowing the backend. Reads and writes never
// block; readiness comes from Watch. Every call is made by the
// connection's one owner (the front end, under its lock).
type Conn interface {
	// Readv reads into bufs. It returns n > 0 and a nil error, or 0 and:
	// ErrWouldBlock (nothing now: wait for Readable), io.EOF (the input
	// ended but the connection lives on: a file's end, stdin closed, no
	// input at all), an error wrapping ErrPeerGone (the peer left: Drop
	// the connection), or another error (the input failed).
	Readv(bufs [][]byte) (int, error)
	// Writev writes bufs. It returns n > 0 (perhaps short) and a nil
	// error, or 0 and: ErrWouldBlock (wait for Writable), an error
	// wrapping ErrPeerGone (Drop the connection), or another error (the
	// output failed for good).
	Writev(bufs [][]byte) (int, error)
	// Pending is how many bytes Readv would return now (FIONREAD);
	// known is false where the backend cannot say.
	Pending() (n int, known bool)
	// Salvage appends to dst what the peer sent before leaving that
	// nobody has read, so it can still reach the guest after Drop. A
	// connection that keeps its unread input (a file, a FIFO) appends
	// nothing.
	Salvage(dst []byte) []byte
	// Watch registers the connection with loop for its lifetime,
	// edge-triggered: h runs on the loop when Readv or Writev may make
	// progress again after ErrWouldBlock (a peer leaving counts). A
	// direction that never blocks (null, a ring, a regular file)
	// registers nothing. Remove the watch before Drop.
	Watch(loop *Loop, h func(Ready)) (*ConnWatch, error)
}

// Ready says which way a connection may move again.
type Ready uint8

const (
	Readable Ready = 1 << iota
	Writable
)

var (
	// ErrWouldBlock: the call would wait; Watch says when to retry.
	ErrWouldBlock = errors.New("chardev: would block")
	// ErrPeerGone: the peer hung up or reset; the connection is over.
	ErrPeerGone = errors.New("chardev: peer gone")
)

// ConnWatch is a connection's registration with a Loop.
type ConnWatch struct{ ws [2]*Watch }

// Remove ends the registration; its handler is not called again. A nil
// ConnWatch is a no-op.
func (cw *ConnWatch) Remove() {
	if cw == nil {
		return
	}
	for _, w := range cw.ws {
		w.Remove()
	}
}
