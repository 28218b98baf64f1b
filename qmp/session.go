package qmp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// drainTimeout bounds how long a departing client's queued output may
// take to write (a client that half-closed and stopped reading).
const drainTimeout = 5 * time.Second

// session is one connected client.
type session struct {
	s    *Server
	conn net.Conn
	// out carries replies and events to the writer, in order; nil tells
	// the writer that the reader is done and everything before is sent.
	out        chan []byte
	done       chan struct{} // closed when the client is dropped
	dropOnce   sync.Once
	writerDone chan struct{} // closed when the writer has sent everything
	ended      chan struct{} // closed when the session is over

	// negotiated is written by the reader with s.mu held, read by Emit
	// with s.mu held and by the reader.
	negotiated bool
	// finishBy is Server.Close's deadline for the last writes; guarded
	// by s.mu.
	finishBy time.Time
}

// serveConn runs one client's session to its end.
func (s *Server) serveConn(c net.Conn) {
	ss := &session{s: s, conn: c, out: make(chan []byte, s.cfg.QueueLen),
		done: make(chan struct{}), writerDone: make(chan struct{}), ended: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.sessions[ss] = true
	s.mu.Unlock()
	go ss.write()
	ss.send(s.greeting())
	ss.read()
	s.mu.Lock()
	delete(s.sessions, ss) // no more events
	deadline := ss.finishBy
	s.mu.Unlock()
	if deadline.IsZero() {
		deadline = time.Now().Add(drainTimeout)
	}
	c.SetWriteDeadline(deadline)
	if ss.sendLast() {
		select {
		case <-ss.writerDone:
		case <-ss.done:
		}
	}
	ss.drop("")
	close(ss.ended)
}

// read handles commands until the client leaves or is dropped.
func (ss *session) read() {
	fr := newFramer(ss.conn, ss.s.cfg.MaxCommand)
	for {
		frame, err := fr.next()
		var reply []byte
		var after []func()
		switch {
		case errors.Is(err, errTooLarge):
			reply, _ = marshal(map[string]*Error{"error": Errorf(GenericError,
				"JSON parse error, command longer than %d bytes (or nested deeper than %d) was skipped", ss.s.cfg.MaxCommand, maxDepth)})
		case errors.Is(err, errReset):
			reply, _ = marshal(map[string]*Error{"error": Errorf(GenericError, "%v", err)})
		case err != nil:
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
				slog.Debug("qmp: client read", "err", err)
			}
			return
		default:
			reply, after = ss.s.execute(ss, frame)
		}
		if !ss.send(reply) {
			return
		}
		for _, f := range after {
			f()
		}
	}
}

// send queues a reply. A client that has let its queue fill (it sends
// commands and reads nothing) is dropped, as for events: waiting for it
// would hold the monitor, and the clients behind it, for as long as it
// likes. False when the client was dropped.
func (ss *session) send(b []byte) bool {
	select {
	case ss.out <- b:
		return true
	case <-ss.done:
		return false
	default:
		ss.drop(fmt.Sprintf("its output queue is full (%d messages): it stopped reading", cap(ss.out)))
		return false
	}
}

// sendLast queues the writer's final nil, waiting for room (the write
// deadline bounds the wait). False when the client was dropped.
func (ss *session) sendLast() bool {
	select {
	case ss.out <- nil:
		return true
	case <-ss.done:
		return false
	}
}

// queueEvent queues an event without waiting; a client whose queue is
// full is dropped. Caller holds s.mu.
func (ss *session) queueEvent(b []byte) {
	select {
	case ss.out <- b:
	default:
		ss.drop(fmt.Sprintf("its output queue is full (%d messages): it stopped reading", cap(ss.out)))
	}
}

// write sends queued output until the reader's final nil, or the drop.
func (ss *session) write() {
	for {
		select {
		case b := <-ss.out:
			if b == nil {
				close(ss.writerDone)
				return
			}
			if _, err := ss.conn.Write(b); err != nil {
				ss.drop("")
				return
			}
		case <-ss.done:
			return
		}
	}
}

// drop disconnects the client; a reason is logged.
func (ss *session) drop(reason string) {
	ss.dropOnce.Do(func() {
		if reason != "" {
			slog.Warn("qmp: dropping client", "remote", ss.conn.RemoteAddr(), "reason", reason)
		}
		close(ss.done)
		ss.conn.Close()
	})
}

// finish ends the session for Server.Close: the reader stops, what is
// queued is written until deadline, then the client is disconnected.
func (ss *session) finish(deadline time.Time) {
	ss.s.mu.Lock()
	ss.finishBy = deadline
	ss.s.mu.Unlock()
	ss.conn.SetWriteDeadline(deadline)
	ss.conn.SetReadDeadline(time.Now())
	<-ss.ended
}
