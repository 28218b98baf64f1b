package virtio

import "io"

// maxIovecs is the most buffers one Iovecs call returns (IOV_MAX).
const maxIovecs = 1024

// cursor is a position in a list of buffers that alias guest memory.
type cursor struct {
	bufs [][]byte // the buffers not yet fully consumed
	off  int      // bytes consumed of bufs[0]
	done int      // bytes consumed in all
	left int      // bytes not yet consumed
	iov  [][]byte // scratch for Iovecs
}

func newCursor(bufs [][]byte, n uint32) cursor {
	return cursor{bufs: bufs, left: int(n)}
}

// Len is the number of bytes not yet consumed.
func (c *cursor) Len() int { return c.left }

// Consumed is the number of bytes consumed so far.
func (c *cursor) Consumed() int { return c.done }

// Iovecs returns the unconsumed bytes as at most IOV_MAX slices of guest
// memory, for readv/writev. They stay valid until the next call.
func (c *cursor) Iovecs() [][]byte {
	c.iov = c.iov[:0]
	for i, b := range c.bufs {
		if len(c.iov) == maxIovecs {
			break
		}
		if i == 0 {
			b = b[c.off:]
		}
		if len(b) > 0 {
			c.iov = append(c.iov, b)
		}
	}
	return c.iov
}

// Advance consumes n bytes (at most Len).
func (c *cursor) Advance(n int) {
	n = min(n, c.left)
	c.done += n
	c.left -= n
	for n > 0 {
		k := min(n, len(c.bufs[0])-c.off)
		n -= k
		c.off += k
		if c.off == len(c.bufs[0]) {
			c.bufs, c.off = c.bufs[1:], 0
		}
	}
	for len(c.bufs) > 0 && c.off == len(c.bufs[0]) {
		c.bufs, c.off = c.bufs[1:], 0
	}
}

// Reader reads a chain's driver-to-device (readable) buffers in order;
// it is the one way devices consume guest output, whether they copy it
// (Read) or hand it to writev (Iovecs, then Advance by what was taken).
type Reader struct{ cursor }

// NewReader returns a Reader at the start of c's readable buffers.
func NewReader(c *Chain) Reader { return Reader{newCursor(c.Readable, c.ReadableLen)} }

// Read copies the next bytes into p; io.EOF once nothing is left.
func (r *Reader) Read(p []byte) (int, error) {
	if r.left == 0 {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.left > 0 {
		k := copy(p[n:], r.bufs[0][r.off:])
		n += k
		r.Advance(k)
	}
	return n, nil
}

// Writer fills a chain's device-to-driver (writable) buffers in order;
// Consumed is the byte count to push as used.
type Writer struct{ cursor }

// NewWriter returns a Writer at the start of c's writable buffers.
func NewWriter(c *Chain) Writer { return Writer{newCursor(c.Writable, c.WritableLen)} }

// Write copies p into the buffers; it stops short, with
// io.ErrShortWrite, when they are full.
func (w *Writer) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) && w.left > 0 {
		k := copy(w.bufs[0][w.off:], p[n:])
		n += k
		w.Advance(k)
	}
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}
