//go:build linux && amd64

package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
)

// Cases that move streams or watch asynchronous notice.

// fileSize is what each file case moves: large enough that the data
// wraps the 256-entry queues many times.
const fileSize = 32 << 20

// logSHA prints "vmm-init: sha256 NAME bytes=N HEX in D (R MiB/s)" for
// the host to compare with its own.
func logSHA(name string, n int64, sum []byte, d time.Duration) {
	logf("sha256 %s bytes=%d %x in %v (%.1f MiB/s)", name, n, sum, d.Round(time.Millisecond),
		float64(n)/(1<<20)/d.Seconds())
}

// caseHostFileSend: the host streams a file and hangs up; the guest
// reads to EOF. Every byte the host sent must arrive before the hang-up
// shows as EOF (the device reads a hung-up peer to its end).
func caseHostFileSend(c *caseCtx) error {
	fd, err := c.open(unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	c.cue("connect")
	if err := waitHost(fd); err != nil {
		return err
	}
	start := time.Now()
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read after %d bytes: %w", n, err)
		}
		if k == 0 {
			break // EOF: the host hung up and nothing is left
		}
		h.Write(buf[:k])
		n += int64(k)
		c.progress.Store(n)
	}
	logSHA(c.name, n, h.Sum(nil), time.Since(start))
	return nil
}

// caseGuestFileSend: the guest writes fileSize bytes of a seeded
// ChaCha8 stream (made in user space: CPL0 time is dear here), and the
// host acks once it has them all.
func caseGuestFileSend(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	c.cue(fmt.Sprintf("connect bytes=%d", fileSize))
	if err := waitHost(fd); err != nil {
		return err
	}
	start := time.Now()
	src := rand.NewChaCha8([32]byte{'v', 'm', 'm'})
	h := sha256.New()
	buf := make([]byte, 32<<10) // one TX buffer per write
	for off := 0; off < fileSize; off += len(buf) {
		src.Read(buf)
		h.Write(buf)
		if err := writeFull(fd, buf); err != nil {
			return fmt.Errorf("write at offset %d: %w", off, err)
		}
		c.progress.Store(int64(off + len(buf)))
	}
	logSHA(c.name, fileSize, h.Sum(nil), time.Since(start))
	return readAck(fd)
}

// caseThreadedReadWrite: one thread blocks in read while another writes
// on the same fd; the host echoes, so each write comes back to the
// reader.
func caseThreadedReadWrite(c *caseCtx) error {
	const size = 4 << 20
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	c.cue("echo")
	if err := waitHost(fd); err != nil {
		return err
	}
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for off := int64(0); off < size; {
			k, err := unix.Read(fd, buf[:min(int64(len(buf)), size-off)])
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || k == 0 {
				read <- fmt.Errorf("reader: read at offset %d = %d, %v; want data", off, k, err)
				return
			}
			if err := checkPattern(buf[:k], off); err != nil {
				read <- fmt.Errorf("reader: %w", err)
				return
			}
			off += int64(k)
			c.progress.Store(off)
		}
		read <- nil
	}()
	time.Sleep(50 * time.Millisecond) // the reader is blocked in read
	buf := make([]byte, 32<<10)
	for off := int64(0); off < size; off += int64(len(buf)) {
		fillPattern(buf, off)
		if err := writeFull(fd, buf); err != nil {
			return fmt.Errorf("writer: write at offset %d: %w", off, err)
		}
	}
	select {
	case err := <-read:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("reader did not get the echo within 30s; want every byte back")
	}
}

// caseSigio: with O_ASYNC and F_SETOWN, the driver signals SIGIO when
// the host connects, when data arrives and when the host hangs up.
func caseSigio(c *caseCtx) error {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGIO)
	defer signal.Stop(sigs)
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETOWN, os.Getpid()); err != nil {
		return fmt.Errorf("F_SETOWN: %w", err)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("F_GETFL: %w", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl|unix.O_ASYNC); err != nil {
		return fmt.Errorf("F_SETFL O_ASYNC: %w", err)
	}
	// step cues the host and waits for a SIGIO after which the port is
	// in the state cond describes.
	step := func(cue, what string, cond func(int16) bool) error {
		for len(sigs) > 0 {
			<-sigs
		}
		c.cue(cue)
		timeout := time.After(hostTimeout)
		for {
			select {
			case <-sigs:
				ev, err := pollOnce(fd, 0)
				if err != nil {
					return err
				}
				if cond(ev) {
					return nil
				}
			case <-timeout:
				ev, _ := pollOnce(fd, 0)
				return fmt.Errorf("no SIGIO within %v of %q (poll revents=%s); want one on %s", hostTimeout, cue, pollString(ev), what)
			}
		}
	}
	if err := step("connect", "host connect", func(ev int16) bool { return ev&unix.POLLHUP == 0 }); err != nil {
		return err
	}
	if err := step("write n=8", "data", func(ev int16) bool { return ev&unix.POLLIN != 0 }); err != nil {
		return err
	}
	b, err := readN(fd, 8, hostTimeout)
	if err != nil {
		return err
	}
	if err := checkPattern(b, 0); err != nil {
		return err
	}
	return step("disconnect", "host hang-up", func(ev int16) bool { return ev&unix.POLLHUP != 0 })
}
