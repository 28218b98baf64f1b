//go:build linux && amd64

package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The `hotplug` command is the guest side of tests/qmp_test.go's
// TestQMPLinuxHotplug. The host adds a port through QMP while the guest
// runs, and the guest:
//
//  1. cues "hotplug add" and waits for the port org.vmm.hot to appear;
//  2. reads "ping" from it and answers "pong";
//  3. opens and closes it hotCycles times (the host counts
//     VSERPORT_CHANGE events);
//  4. writes hotTransfer bytes of the pattern and waits for the host's
//     ack (the host pauses and resumes the VM meanwhile);
//  5. writes without end until the host unplugs the port (device_del),
//     then waits for the port to disappear.
const (
	hotPort     = "org.vmm.hot"
	hotCycles   = 100
	hotTransfer = 4 << 20
)

func runHotplug() error {
	logf("cue hotplug add")
	dev, err := portDevice(hotPort)
	if err != nil {
		return err
	}
	logf("hot found %s", dev)

	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	b, err := readN(fd, 4, 30*time.Second)
	if err != nil || string(b) != "ping" {
		unix.Close(fd)
		return fmt.Errorf("%s: read %q, %v; want ping", dev, b, err)
	}
	if err := writeFull(fd, []byte("pong")); err != nil {
		unix.Close(fd)
		return err
	}
	unix.Close(fd)
	logf("hot ping done")

	for i := range hotCycles {
		fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open/close cycle %d: %w", i, err)
		}
		unix.Close(fd)
	}
	logf("hot cycles done n=%d", hotCycles)

	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := writePattern(f, hotTransfer); err != nil {
		f.Close()
		return fmt.Errorf("%s: transfer: %w", dev, err)
	}
	if err := readAck(int(f.Fd())); err != nil {
		f.Close()
		return err
	}
	f.Close()
	logf("hot transfer done")

	f, err = os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	logf("cue hotplug writing")
	buf := make([]byte, 32<<10)
	var n int64
	for {
		fillPattern(buf, n)
		k, err := f.Write(buf)
		n += int64(k)
		if err != nil {
			logf("hot write ended after %d bytes: %v", n, err)
			break
		}
	}
	f.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := findPort(hotPort); err != nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the unplugged port is still there after 30 s")
		}
	}
	logf("hot removed")
	return nil
}
