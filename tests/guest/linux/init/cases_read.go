//go:build linux && amd64

package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Cases on the read side and the port's poll states. The host connects
// on "connect", writes pattern bytes from offset 0 on "write" (the
// count is in the cue), and hangs up on "disconnect".

// stillBlocked is how long a blocked call must stay blocked to count as
// blocked: long next to a virtio round trip here (milliseconds).
const stillBlocked = 500 * time.Millisecond

// caseBlockingRead: with the host connected and no data, read blocks
// until the host writes, then returns what it wrote.
func caseBlockingRead(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	c.cue("connect")
	if err := waitHost(fd); err != nil {
		return err
	}
	type res struct {
		n   int
		err error
	}
	buf := make([]byte, 4096)
	got := make(chan res, 1)
	go func() {
		for {
			n, err := unix.Read(fd, buf)
			if !errors.Is(err, unix.EINTR) {
				got <- res{n, err}
				return
			}
		}
	}()
	select {
	case r := <-got:
		return fmt.Errorf("read before the host wrote = %d, %v; want it to block", r.n, r.err)
	case <-time.After(stillBlocked):
	}
	c.cue("write n=4096")
	var r res
	select {
	case r = <-got:
	case <-time.After(hostTimeout):
		return fmt.Errorf("read still blocked %v after the host wrote; want the data", hostTimeout)
	}
	if r.err != nil || r.n <= 0 {
		return fmt.Errorf("blocked read woke with %d, %v; want data", r.n, r.err)
	}
	if err := checkPattern(buf[:r.n], 0); err != nil {
		return err
	}
	rest, err := readN(fd, len(buf)-r.n, hostTimeout)
	if err != nil {
		return err
	}
	return checkPattern(rest, int64(r.n))
}

// caseNonblockingRead: O_NONBLOCK read with the host connected and no
// data is EAGAIN; after the host writes, the data.
func caseNonblockingRead(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR | unix.O_NONBLOCK)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	c.cue("connect")
	if err := waitHost(fd); err != nil {
		return err
	}
	if n, err := unix.Read(fd, make([]byte, 64)); !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("O_NONBLOCK read with no data = %d, %v; want EAGAIN", n, err)
	}
	c.cue("write n=4096")
	b, err := readN(fd, 4096, hostTimeout)
	if err != nil {
		return err
	}
	if err := checkPattern(b, 0); err != nil {
		return err
	}
	if n, err := unix.Read(fd, make([]byte, 64)); !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("O_NONBLOCK read after all data = %d, %v; want EAGAIN", n, err)
	}
	return nil
}

// casePollStates walks the port through the states poll reports
// (port_fops_poll): no host = IN|HUP (read would not block: EOF),
// connected = OUT, data = IN|OUT, host gone again = IN|HUP.
func casePollStates(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	want := func(state string, got, want int16) error {
		if got != want {
			return fmt.Errorf("poll %s: revents=%s; want %s", state, pollString(got), pollString(want))
		}
		return nil
	}
	ev, err := pollOnce(fd, 0)
	if err != nil {
		return err
	}
	if err := want("without host", ev, unix.POLLIN|unix.POLLHUP); err != nil {
		return err
	}
	c.cue("connect")
	if ev, err = pollUntil(fd, hostTimeout, "the host connected (no POLLHUP)", func(ev int16) bool { return ev&unix.POLLHUP == 0 }); err != nil {
		return err
	}
	if err := want("after the host connected", ev, unix.POLLOUT); err != nil {
		return err
	}
	c.cue("write n=16")
	if ev, err = pollUntil(fd, hostTimeout, "POLLIN", func(ev int16) bool { return ev&unix.POLLIN != 0 }); err != nil {
		return err
	}
	if err := want("after a host write", ev, unix.POLLIN|unix.POLLOUT); err != nil {
		return err
	}
	b, err := readN(fd, 16, hostTimeout)
	if err != nil {
		return err
	}
	if err := checkPattern(b, 0); err != nil {
		return err
	}
	if ev, err = pollOnce(fd, 0); err != nil {
		return err
	}
	if err := want("after reading everything", ev, unix.POLLOUT); err != nil {
		return err
	}
	c.cue("disconnect")
	if ev, err = pollUntil(fd, hostTimeout, "POLLHUP", func(ev int16) bool { return ev&unix.POLLHUP != 0 }); err != nil {
		return err
	}
	return want("after the host hung up", ev, unix.POLLIN|unix.POLLHUP)
}

// caseCloseDiscards: data the guest did not read is gone once it closes
// the port; after reopening, only what the host writes next arrives.
func caseCloseDiscards(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	c.cue("connect")
	if err := waitHost(fd); err != nil {
		unix.Close(fd)
		return err
	}
	c.cue("write n=64") // pattern bytes [0, 64): the data to discard
	if _, err := pollUntil(fd, hostTimeout, "POLLIN", func(ev int16) bool { return ev&unix.POLLIN != 0 }); err != nil {
		unix.Close(fd)
		return err
	}
	time.Sleep(200 * time.Millisecond) // all 64 bytes in the guest, not half
	unix.Close(fd)
	if fd, err = c.open(unix.O_RDWR); err != nil {
		return err
	}
	defer unix.Close(fd)
	c.cue("write off=1048576 n=64") // fresh bytes from another offset
	b, err := readN(fd, 64, hostTimeout)
	if err != nil {
		return err
	}
	if checkPattern(b, 0) == nil {
		return errors.New("after close and reopen read the 64 unread bytes from before the close; want them discarded")
	}
	if err := checkPattern(b, 1<<20); err != nil {
		return fmt.Errorf("after close and reopen: %w", err)
	}
	// Nothing else follows.
	time.Sleep(stillBlocked)
	if ev, err := pollOnce(fd, 0); err != nil || ev&unix.POLLIN != 0 {
		return fmt.Errorf("after the fresh bytes poll revents=%s, %v; want no POLLIN", pollString(ev), err)
	}
	return nil
}

// caseHostWriteWhileClosed: what the host writes while the guest has
// the port closed is held, not dropped, and arrives once it opens (the
// device takes host data only for an open port; the driver would
// discard data for a closed one).
func caseHostWriteWhileClosed(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	c.cue("connect")
	err = waitHost(fd)
	unix.Close(fd)
	if err != nil {
		return err
	}
	c.cue("write n=64")
	// The host writes within milliseconds; were it slower, the data
	// would merely come later and the case still pass.
	time.Sleep(stillBlocked)
	if fd, err = c.open(unix.O_RDWR); err != nil {
		return err
	}
	defer unix.Close(fd)
	b, err := readN(fd, 64, hostTimeout)
	if err != nil {
		return fmt.Errorf("reading what the host wrote while the port was closed: %w; want all 64 bytes", err)
	}
	return checkPattern(b, 0)
}
