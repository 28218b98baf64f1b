package chardev

import (
	"io"
	"sync"
)

// OutputRing is a console sink that never blocks its writer (a vCPU): it
// keeps up to a fixed number of bytes for a flusher goroutine that does
// the blocking writes to the host. When the host falls behind by more
// than the ring holds, the oldest bytes are dropped and counted — the
// console must never stall the guest (DESIGN.md, console ports).
type OutputRing struct {
	dst io.Writer

	mu   sync.Mutex
	cond *sync.Cond
	// The fields below are guarded by mu.
	ring   *DropRing
	closed bool
	err    error // first write error from dst; later output is discarded
	done   chan struct{}
}

// NewOutputRing starts a flusher writing to dst through a ring of size bytes.
func NewOutputRing(dst io.Writer, size int) *OutputRing {
	r := &OutputRing{dst: dst, ring: NewDropRing(size), done: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	go r.flush()
	return r
}

// Write queues p and never blocks. It always reports len(p) written.
func (r *OutputRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.err != nil {
		return len(p), nil
	}
	r.ring.Write(p)
	r.cond.Signal()
	return len(p), nil
}

// Dropped returns how many bytes were discarded because the host was slow.
func (r *OutputRing) Dropped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ring.Dropped()
}

func (r *OutputRing) flush() {
	defer close(r.done)
	chunk := make([]byte, 4096)
	for {
		r.mu.Lock()
		for r.ring.Len() == 0 && !r.closed {
			r.cond.Wait()
		}
		if r.ring.Len() == 0 {
			r.mu.Unlock()
			return
		}
		k := 0
		for _, c := range r.ring.Chunks() {
			k += copy(chunk[k:], c)
		}
		r.ring.Consume(k)
		r.mu.Unlock()
		if _, err := r.dst.Write(chunk[:k]); err != nil {
			r.mu.Lock()
			r.err = err
			r.ring.Consume(r.ring.Len())
			r.mu.Unlock()
			return
		}
	}
}

// Close writes out what is held and stops the flusher.
func (r *OutputRing) Close() error {
	r.mu.Lock()
	r.closed = true
	r.cond.Signal()
	r.mu.Unlock()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}
