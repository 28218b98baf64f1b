package chardev

// DropRing is a bounded drop-oldest byte buffer, the one behind every
// output that must never block its writer: the ringbuf backend, the
// OutputRing console sink, and a virtio console port's host-side buffer.
// When full, the oldest bytes are overwritten and counted. It has no
// lock: its owner serializes access.
type DropRing struct {
	buf     []byte
	start   int // index of the oldest byte
	n       int // bytes held
	dropped uint64
}

// NewDropRing returns a ring of size bytes.
func NewDropRing(size int) *DropRing { return &DropRing{buf: make([]byte, size)} }

// Write appends p, dropping the oldest bytes when full.
func (r *DropRing) Write(p []byte) {
	size := len(r.buf)
	if len(p) >= size {
		r.dropped += uint64(r.n + len(p) - size)
		copy(r.buf, p[len(p)-size:])
		r.start, r.n = 0, size
		return
	}
	if over := r.n + len(p) - size; over > 0 {
		r.start = (r.start + over) % size
		r.n -= over
		r.dropped += uint64(over)
	}
	end := (r.start + r.n) % size
	k := copy(r.buf[end:], p)
	copy(r.buf, p[k:])
	r.n += len(p)
}

// Chunks returns the held bytes as at most two slices, oldest first.
func (r *DropRing) Chunks() [][]byte {
	if r.n == 0 {
		return nil
	}
	end := r.start + r.n
	if end <= len(r.buf) {
		return [][]byte{r.buf[r.start:end]}
	}
	return [][]byte{r.buf[r.start:], r.buf[:end-len(r.buf)]}
}

// Consume forgets the oldest n bytes.
func (r *DropRing) Consume(n int) {
	n = min(n, r.n)
	r.start = (r.start + n) % len(r.buf)
	r.n -= n
}

// Len is the number of bytes held.
func (r *DropRing) Len() int { return r.n }

// Dropped is the number of bytes overwritten before anyone took them.
func (r *DropRing) Dropped() uint64 { return r.dropped }
