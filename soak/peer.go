package soak

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// peer is one port's host side across all its connections: the two
// stream positions survive every departure, which is what makes the
// verification exact.
type peer struct {
	spec PortSpec
	env  *env

	// rx and txOff belong to the current reader and writer goroutine;
	// the manager touches them only between connections.
	rx    Verifier
	txOff int64

	read, written atomic.Int64 // bytes moved, for throughput
	discarded     atomic.Int64 // received but left unread by departing peers
	rate          atomic.Int64 // slow reader bound, bytes/s; 0 = unbounded
	paused        atomic.Bool
	corrupt       atomic.Bool // inject one wrong byte at the next write

	mu sync.Mutex
	// The fields below are guarded by mu.
	injected []int64 // offsets of deliberately wrong bytes sent
	counts   map[Kind]int
	conns    int // connections made

	cmds chan Event // departures, handled by the backend's manager
}

func newPeer(spec PortSpec, e *env) *peer {
	return &peer{spec: spec, env: e, counts: map[Kind]int{}, cmds: make(chan Event, 8)}
}

func (p *peer) count(k Kind) {
	p.mu.Lock()
	p.counts[k]++
	p.mu.Unlock()
}

// half is one direction of one connection, run by its own goroutine.
type half struct {
	stop     atomic.Bool
	finished chan struct{}
	err      error
	wake     func(time.Time) error // sets a deadline, to interrupt a blocked call
}

func startHalf(wake func(time.Time) error, loop func(*half) error) *half {
	h := &half{finished: make(chan struct{}), wake: wake}
	go func() {
		defer close(h.finished)
		h.err = loop(h)
	}()
	return h
}

// halt stops the goroutine and waits for it; now interrupts a blocked
// read or write at once (a kill) instead of at its next deadline.
func (h *half) halt(now bool) error {
	if h == nil {
		return nil
	}
	h.stop.Store(true)
	if now {
		h.wake(time.Now())
	}
	<-h.finished
	return h.err
}

// done is closed when the goroutine ended; nil for an absent half.
func (h *half) done() <-chan struct{} {
	if h == nil {
		return nil
	}
	return h.finished
}

type reader interface {
	Read([]byte) (int, error)
	SetReadDeadline(time.Time) error
}

type writer interface {
	Write([]byte) (int, error)
	SetWriteDeadline(time.Time) error
}

// tick bounds every blocking call, so a stop is seen within it.
const tick = 100 * time.Millisecond

const chunk = 64 << 10

func timeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// readLoop reads and checks the guest→host stream, honouring pause and
// rate; every byte read is checked at its exact offset.
func (p *peer) readLoop(r reader) func(*half) error {
	return func(h *half) error {
		buf := make([]byte, chunk)
		for !h.stop.Load() {
			if p.paused.Load() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			n, rate := len(buf), p.rate.Load()
			if rate > 0 {
				n = int(min(max(rate/50, 1), int64(len(buf)))) // about 50 reads a second
			}
			r.SetReadDeadline(time.Now().Add(tick))
			k, err := r.Read(buf[:n])
			if k > 0 {
				if m := p.rx.Feed(buf[:k]); m != nil {
					p.env.violate(p.spec.Name, "guest→host", m.Offset,
						fmt.Sprintf("host read %#02x, the stream has %#02x", m.Got, m.Want))
				}
				p.read.Add(int64(k))
				if rate > 0 {
					time.Sleep(time.Duration(int64(k) * int64(time.Second) / rate))
				}
			}
			if err != nil && !timeout(err) {
				if h.stop.Load() {
					return nil
				}
				return fmt.Errorf("read at guest→host offset %d: %w", p.rx.Offset, err)
			}
		}
		return nil
	}
}

// writeLoop writes the host→guest stream from where the last peer
// stopped; a partial write advances exactly by what was taken.
func (p *peer) writeLoop(w writer) func(*half) error {
	return func(h *half) error {
		buf := make([]byte, chunk)
		for !h.stop.Load() {
			Fill(buf, p.txOff)
			bad := p.corrupt.Load()
			if bad {
				buf[0] ^= 0xff // the guest must report this offset
			}
			w.SetWriteDeadline(time.Now().Add(tick))
			k, err := w.Write(buf)
			if bad && k > 0 {
				p.corrupt.Store(false)
				p.mu.Lock()
				p.injected = append(p.injected, p.txOff)
				p.mu.Unlock()
				p.env.logf("port %s: injected a wrong byte at host→guest offset %d", p.spec.Name, p.txOff)
			}
			p.txOff += int64(k)
			p.written.Add(int64(k))
			if err != nil && !timeout(err) {
				if h.stop.Load() {
					return nil
				}
				return fmt.Errorf("write at host→guest offset %d: %w", p.txOff, err)
			}
		}
		return nil
	}
}

// startHalves runs a reader on r and, if the port carries one, a writer
// on w.
func (p *peer) startHalves(r reader, w writer) (rh, wh *half) {
	p.countConn()
	rh = startHalf(r.SetReadDeadline, p.readLoop(r))
	if p.spec.HostToGuest {
		wh = startHalf(w.SetWriteDeadline, p.writeLoop(w))
	}
	return rh, wh
}

// lost reports a connection that ended without being asked to: vmm
// must never drop a peer. It returns true when the run is ending (the
// manager then stops rather than reconnect to a vmm that is gone).
func (p *peer) lost(rh, wh *half) bool {
	err := rh.halt(true)
	if werr := wh.halt(true); err == nil {
		err = werr
	}
	if p.env.expectedLoss() {
		return true
	}
	if err == nil {
		err = errors.New("no error")
	}
	p.env.violate(p.spec.Name, "", -1, "connection ended unexpectedly: "+err.Error())
	return false
}

func (p *peer) countConn() {
	p.mu.Lock()
	p.conns++
	p.mu.Unlock()
}
