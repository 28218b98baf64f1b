//go:build linux && amd64

package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Writers against a host that connects but does not read: the port's
// TX queue (and the device's hold on it) fills, the driver's outvq_full
// makes writers block or get EAGAIN, and once the host reads on the
// "read n=N" cue everything resumes and all N pattern bytes arrive.

// maxFill bounds the bytes written before the queue must have filled:
// far above 256 queue entries of 32 KiB plus a socket buffer.
const maxFill = 64 << 20

// stallTime is how long writes must make no progress to count as
// blocked on a full queue.
const stallTime = time.Second

// afterStall is what the writers write once the host reads: enough to
// wrap the queue again after the stall.
const afterStall = 1 << 20

// caseBlockingWrite: a blocking write blocks with no host, and, once
// the host connects but does not read, as soon as the queue is full;
// when the host reads, it resumes and every byte arrives.
func caseBlockingWrite(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var written, limit atomic.Int64
	limit.Store(maxFill)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 32<<10)
		for off := int64(0); off < limit.Load(); off += int64(len(buf)) {
			fillPattern(buf, off)
			if err := writeFull(fd, buf); err != nil {
				done <- fmt.Errorf("write at offset %d: %w", off, err)
				return
			}
			written.Store(off + int64(len(buf)))
			c.progress.Store(off + int64(len(buf)))
		}
		done <- nil
	}()
	time.Sleep(stillBlocked)
	if n := written.Load(); n != 0 {
		return fmt.Errorf("with no host connected %d bytes written; want the first write to block", n)
	}
	c.cue("connect")
	// Progress, then none for stallTime: the writer is blocked.
	deadline := time.Now().Add(hostTimeout)
	last, lastChange := int64(0), time.Now()
	for {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			return fmt.Errorf("wrote all %d bytes though the host read nothing; want writes to block once the queue is full", written.Load())
		case <-time.After(50 * time.Millisecond):
		}
		n := written.Load()
		if n != last {
			last, lastChange = n, time.Now()
		}
		if n == 0 && time.Now().After(deadline) {
			return fmt.Errorf("nothing written %v after the host connected; want writes to go through", hostTimeout)
		}
		if n > 0 && time.Since(lastChange) >= stallTime {
			break
		}
	}
	if ev, err := pollOnce(fd, 0); err != nil || ev&unix.POLLOUT != 0 {
		return fmt.Errorf("poll with the writer blocked at %d bytes: revents=%s, %v; want no POLLOUT", last, pollString(ev), err)
	}
	total := last + afterStall
	limit.Store(total)
	logf("blocking_write blocked after %d bytes", last)
	c.cue(fmt.Sprintf("read n=%d", total))
	select {
	case err := <-done:
		if err != nil {
			return err
		}
	case <-time.After(30 * time.Second):
		return fmt.Errorf("writer still blocked at %d of %d bytes 30s after the host began reading; want it to resume", written.Load(), total)
	}
	return readAck(fd)
}

// caseNonblockingWrite: an O_NONBLOCK write is EAGAIN with no host, and,
// with a host that does not read, once the queue is full (POLLOUT
// clear); after the host reads, POLLOUT returns and writes go through.
func caseNonblockingWrite(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR | unix.O_NONBLOCK)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 32<<10)
	if n, err := unix.Write(fd, buf); !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("O_NONBLOCK write with no host = %d, %v; want EAGAIN", n, err)
	}
	c.cue("connect")
	if err := waitHost(fd); err != nil {
		return err
	}
	// write writes up to size pattern bytes from off; on EAGAIN it
	// waits up to wait for POLLOUT and reports whether the port stayed
	// full.
	eagains := 0
	write := func(off, size int64, wait time.Duration) (int64, bool, error) {
		b := buf[:min(int64(len(buf)), size)]
		fillPattern(b, off)
		n, err := unix.Write(fd, b)
		switch {
		case errors.Is(err, unix.EAGAIN):
			eagains++
			ev, _ := pollUntil(fd, wait, "POLLOUT", func(ev int16) bool { return ev&unix.POLLOUT != 0 })
			return 0, ev&unix.POLLOUT == 0, nil
		case errors.Is(err, unix.EINTR):
			return 0, false, nil
		case err != nil:
			return 0, false, fmt.Errorf("write at offset %d: %w", off, err)
		}
		return int64(n), false, nil
	}
	var off int64
	for {
		n, full, err := write(off, maxFill, stallTime)
		if err != nil {
			return err
		}
		if full {
			break
		}
		if off += n; off >= maxFill {
			return fmt.Errorf("wrote %d bytes (%d EAGAINs) though the host read nothing; want EAGAIN for good once the queue is full", off, eagains)
		}
	}
	if n, err := unix.Write(fd, buf); !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("O_NONBLOCK write on the full queue (%d bytes in) = %d, %v; want EAGAIN", off, n, err)
	}
	total := off + afterStall
	logf("nonblocking_write full after %d bytes", off)
	c.cue(fmt.Sprintf("read n=%d", total))
	for off < total {
		n, full, err := write(off, total-off, hostTimeout)
		if err != nil {
			return err
		}
		if full {
			return fmt.Errorf("no POLLOUT %v after the host began reading (%d of %d bytes in); want the queue to drain", hostTimeout, off, total)
		}
		off += n
		c.progress.Store(off)
	}
	return readAck(fd)
}
