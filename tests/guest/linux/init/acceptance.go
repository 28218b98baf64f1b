//go:build linux && amd64

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The `accept` command runs the Linux-side acceptance cases of the
// virtio-serial device (tests/acceptance_test.go is the host side):
//
//	vmm.cmd=accept            every case, in the order of acceptCases
//	vmm.cmd=accept=A,B        only the cases named (the ports must exist)
//
// Each case has its own port, org.vmm.t.NAME, so one case's leftovers
// (data, a connected peer, a writer stuck in a timed-out case) cannot
// disturb the next. A case prints
//
//	vmm-init: case NAME start
//	vmm-init: cue NAME WHAT [k=v…]   whenever the host must act (connect,
//	                                 write, read, disconnect)
//	vmm-init: case NAME ok           or: vmm-init: case NAME FAIL <reason>
//
// The guest learns of the host's reaction through the port itself
// (poll, SIGIO, data), never by sleeping for it; the host reacts to the
// cue lines it reads from the console.

// portPrefix names a case's port: portPrefix + case name.
const portPrefix = "org.vmm.t."

// caseTimeout bounds one case; a case that blocks for longer is failed
// and left behind (its port is its own) so the rest still run.
const caseTimeout = 90 * time.Second

// hostTimeout bounds each wait for the host to react to a cue.
const hostTimeout = 15 * time.Second

// acceptCase is one case: run gets the case's port device.
type acceptCase struct {
	name string
	run  func(c *caseCtx) error
}

// acceptCases is the run order. The cheap state cases come first; the
// bulk transfers and the queue-filling writers last. (Set in init:
// port_names lists it.)
var acceptCases []acceptCase

func init() { acceptCases = allCases() }

func allCases() []acceptCase {
	return []acceptCase{
		{"open_close", caseOpenClose},
		{"multiple_open", caseMultipleOpen},
		{"port_names", casePortNames},
		{"read_without_host", caseReadWithoutHost},
		{"lseek_refused", caseLseekRefused},
		{"blocking_read", caseBlockingRead},
		{"nonblocking_read", caseNonblockingRead},
		{"poll_states", casePollStates},
		{"close_discards", caseCloseDiscards},
		{"host_write_while_closed", caseHostWriteWhileClosed},
		{"sigio", caseSigio},
		{"threaded_read_write", caseThreadedReadWrite},
		{"host_file_send", caseHostFileSend},
		{"guest_file_send", caseGuestFileSend},
		{"blocking_write", caseBlockingWrite},
		{"nonblocking_write", caseNonblockingWrite},
	}
}

// caseCtx is what a case knows: its name and port device.
type caseCtx struct {
	name, dev string
	// progress is the bytes a streaming case has moved, for the
	// timeout message: slow and stuck look different.
	progress atomic.Int64
}

// cue asks the host to act: it prints "vmm-init: cue NAME WHAT".
func (c *caseCtx) cue(what string) { logf("cue %s %s", c.name, what) }

// open opens the case's port with flags (O_CLOEXEC added).
func (c *caseCtx) open(flags int) (int, error) {
	fd, err := unix.Open(c.dev, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", c.dev, err)
	}
	return fd, nil
}

// selectCases returns the cases named in spec ("" is all of them).
func selectCases(spec string) ([]acceptCase, error) {
	if spec == "" {
		return acceptCases, nil
	}
	var out []acceptCase
	for _, n := range strings.Split(spec, ",") {
		found := false
		for _, ac := range acceptCases {
			if ac.name == n {
				out, found = append(out, ac), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown acceptance case %q", n)
		}
	}
	return out, nil
}

// portsTimeout bounds the wait for the driver to add every port: it
// does so after boot, as the device's PORT_ADD and PORT_NAME come in.
const portsTimeout = 30 * time.Second

// waitPorts waits until the cases' ports and the console port are
// named in sysfs and have their /dev node.
func waitPorts(cases []acceptCase) error {
	want := []string{"org.vmm.console"}
	for _, ac := range cases {
		want = append(want, portPrefix+ac.name)
	}
	start := time.Now()
	for {
		missing := ""
		for _, n := range want {
			dev, err := portDevice(n)
			if err == nil {
				_, err = os.Stat(dev)
			}
			if err != nil {
				missing = n
				break
			}
		}
		if missing == "" {
			logf("accept ports ready in %v", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if time.Since(start) > portsTimeout {
			return fmt.Errorf("port %q not there %v after boot; want every port the host configured", missing, portsTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runAcceptance waits for the ports, lists them, and runs the selected
// cases one after another.
func runAcceptance(spec string) error {
	cases, err := selectCases(spec)
	if err != nil {
		return err
	}
	if err := waitPorts(cases); err != nil {
		return err
	}
	if err := listPorts(); err != nil {
		return err
	}
	start := time.Now()
	var failed []string
	for _, ac := range cases {
		logf("case %s start", ac.name)
		t0 := time.Now()
		err := runCase(ac)
		if err != nil {
			failed = append(failed, ac.name)
			logf("case %s FAIL %v", ac.name, err)
			continue
		}
		logf("case %s ok", ac.name)
		logf("case %s took %v", ac.name, time.Since(t0).Round(time.Millisecond))
	}
	logf("acceptance %d cases, %d failed, in %v", len(cases), len(failed), time.Since(start).Round(time.Millisecond))
	if len(failed) > 0 {
		return fmt.Errorf("acceptance cases failed: %s", strings.Join(failed, " "))
	}
	return nil
}

// runCase runs one case under caseTimeout.
func runCase(ac acceptCase) error {
	dev, err := portDevice(portPrefix + ac.name)
	if err != nil {
		return err
	}
	c := &caseCtx{name: ac.name, dev: dev}
	done := make(chan error, 1)
	go func() { done <- ac.run(c) }()
	select {
	case err := <-done:
		return err
	case <-time.After(caseTimeout):
		return fmt.Errorf("did not finish within %v (%d bytes moved)", caseTimeout, c.progress.Load())
	}
}

// Poll bits the cases look at; POLLRDNORM and friends are left out.
const pollMask = unix.POLLIN | unix.POLLOUT | unix.POLLHUP | unix.POLLERR

// pollOnce polls fd for IN|OUT once, waiting up to d, and returns the
// revents masked with pollMask (0 on a timeout).
func pollOnce(fd int, d time.Duration) (int16, error) {
	deadline := time.Now().Add(d)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLOUT}}
		ms := int(time.Until(deadline).Milliseconds())
		_, err := unix.Poll(fds, max(ms, 0))
		if errors.Is(err, unix.EINTR) { // Go's preemption signals, SIGIO
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("poll: %w", err)
		}
		return fds[0].Revents & pollMask, nil
	}
}

// pollUntil polls fd until cond(revents) holds or d passes; it returns
// the last revents either way, and an error naming what on a timeout.
func pollUntil(fd int, d time.Duration, what string, cond func(int16) bool) (int16, error) {
	deadline := time.Now().Add(d)
	for {
		// poll returns at once while any bit is set (HUP always is
		// reported), so look again every 20 ms rather than spin.
		ev, err := pollOnce(fd, 0)
		if err != nil || cond(ev) {
			return ev, err
		}
		if time.Now().After(deadline) {
			return ev, fmt.Errorf("poll revents=%s after %v; want %s", pollString(ev), d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHost waits until the host side is connected: no POLLHUP.
func waitHost(fd int) error {
	_, err := pollUntil(fd, hostTimeout, "the host connected (no POLLHUP)", func(ev int16) bool { return ev&unix.POLLHUP == 0 })
	return err
}

// pollString names the bits of revents: "IN|OUT", "HUP", "0".
func pollString(ev int16) string {
	var s []string
	for _, b := range []struct {
		bit  int16
		name string
	}{{unix.POLLIN, "IN"}, {unix.POLLOUT, "OUT"}, {unix.POLLHUP, "HUP"}, {unix.POLLERR, "ERR"}} {
		if ev&b.bit != 0 {
			s = append(s, b.name)
		}
	}
	if len(s) == 0 {
		return "0"
	}
	return strings.Join(s, "|")
}

// readN reads n bytes within d, by poll and read, on a blocking or
// non-blocking fd; EOF before n bytes is an error.
func readN(fd, n int, d time.Duration) ([]byte, error) {
	buf := make([]byte, n)
	deadline := time.Now().Add(d)
	for got := 0; got < n; {
		if _, err := pollUntil(fd, time.Until(deadline), "data (POLLIN)", func(ev int16) bool { return ev&unix.POLLIN != 0 }); err != nil {
			return buf[:got], fmt.Errorf("after %d of %d bytes: %w", got, n, err)
		}
		k, err := unix.Read(fd, buf[got:])
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return buf[:got], fmt.Errorf("read after %d of %d bytes: %w", got, n, err)
		case k == 0:
			return buf[:got], fmt.Errorf("EOF after %d of %d bytes", got, n)
		}
		got += k
	}
	return buf, nil
}

// checkPattern compares b with the pattern stream at offset off.
func checkPattern(b []byte, off int64) error {
	want := make([]byte, len(b))
	fillPattern(want, off)
	for i := range b {
		if b[i] != want[i] {
			return fmt.Errorf("byte at offset %d is %#x; want %#x", off+int64(i), b[i], want[i])
		}
	}
	return nil
}

// readAck waits for the host's ack byte, which says it has every byte.
func readAck(fd int) error {
	b, err := readN(fd, 1, 30*time.Second)
	if err != nil {
		return fmt.Errorf("waiting for the host's ack: %w", err)
	}
	if b[0] != ackByte {
		return fmt.Errorf("host ack is %#x; want %#x", b[0], ackByte)
	}
	return nil
}

// writeFull writes all of b on a blocking fd.
func writeFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
