package chardev

import (
	"io"
	"sync"
)

// Ringbuf is `-chardev ringbuf,size=N`: guest output kept in memory,
// newest N bytes (oldest dropped), read later through Contents. It has
// no input, is always connected, and is its own connection.
type Ringbuf struct {
	id string

	mu   sync.Mutex
	ring *DropRing // guarded by mu
}

// NewRingbuf returns a ring buffer of size bytes.
func NewRingbuf(id string, size int) *Ringbuf { return &Ringbuf{id: id, ring: NewDropRing(size)} }

func (r *Ringbuf) ID() string { return r.id }

func (r *Ringbuf) Start(_ *Loop, sink Sink) error {
	sink.Connected(r)
	return nil
}

func (r *Ringbuf) Drop(Conn)    {}
func (r *Ringbuf) Close() error { return nil }

// Write keeps p, dropping the oldest bytes when full; it never blocks.
func (r *Ringbuf) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring.Write(p)
	return len(p), nil
}

// Readv finds no input: the ring is output only.
func (r *Ringbuf) Readv([][]byte) (int, error) { return 0, io.EOF }

// Writev keeps bufs like Write; it never blocks.
func (r *Ringbuf) Writev(bufs [][]byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for _, b := range bufs {
		r.ring.Write(b)
		k += len(b)
	}
	return k, nil
}

func (r *Ringbuf) Pending() (int, bool)                         { return 0, true }
func (r *Ringbuf) Salvage(dst []byte) []byte                    { return dst }
func (r *Ringbuf) Watch(*Loop, func(Ready)) (*ConnWatch, error) { return nil, nil }

// Contents returns a copy of what the ring holds, oldest first, and how
// many bytes were dropped to make room.
func (r *Ringbuf) Contents() ([]byte, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []byte
	for _, c := range r.ring.Chunks() {
		out = append(out, c...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, r.ring.Dropped()
}

// Read takes up to n of the oldest bytes out of the ring (QMP's
// ringbuf-read consumes what it returns).
func (r *Ringbuf) Read(n int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []byte{}
	for _, c := range r.ring.Chunks() {
		if len(out) >= n {
			break
		}
		out = append(out, c[:min(len(c), n-len(out))]...)
	}
	r.ring.Consume(len(out))
	return out
}
