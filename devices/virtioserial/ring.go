package virtioserial

// byteRing is a bounded drop-oldest buffer: console output that the
// host cannot take right now waits here rather than stalling the guest,
// which spins until its console buffers come back (DESIGN.md).
type byteRing struct {
	buf     []byte
	start   int
	n       int
	dropped uint64
}

func newByteRing(size int) *byteRing { return &byteRing{buf: make([]byte, size)} }

// write appends p, dropping the oldest bytes when full.
func (r *byteRing) write(p []byte) {
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

// chunks returns the held bytes as at most two slices, oldest first.
func (r *byteRing) chunks() [][]byte {
	if r.n == 0 {
		return nil
	}
	end := r.start + r.n
	if end <= len(r.buf) {
		return [][]byte{r.buf[r.start:end]}
	}
	return [][]byte{r.buf[r.start:], r.buf[:end-len(r.buf)]}
}

// consume forgets the oldest n bytes.
func (r *byteRing) consume(n int) {
	n = min(n, r.n)
	r.start = (r.start + n) % len(r.buf)
	r.n -= n
}

func (r *byteRing) len() int { return r.n }
