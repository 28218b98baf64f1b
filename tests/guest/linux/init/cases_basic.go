//go:build linux && amd64

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Cases that need no host peer: the driver answers them from the port's
// state alone, and no host ever connects to these ports.

// caseOpenClose: a port opens and closes, in every access mode, again
// and again (each open and close is a PORT_OPEN message to the device).
func caseOpenClose(c *caseCtx) error {
	for i, flags := range []int{unix.O_RDWR, unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR} {
		fd, err := c.open(flags)
		if err != nil {
			return fmt.Errorf("open #%d (flags %#x): %w; want success", i+1, flags, err)
		}
		if err := unix.Close(fd); err != nil {
			return fmt.Errorf("close #%d: %w; want success", i+1, err)
		}
	}
	return nil
}

// caseMultipleOpen: the driver lets one opener at a time have a port.
func caseMultipleOpen(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	fd2, err := unix.Open(c.dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd2)
	}
	if !errors.Is(err, unix.EBUSY) {
		unix.Close(fd)
		return fmt.Errorf("second open of %s: got %v; want EBUSY", c.dev, err)
	}
	unix.Close(fd)
	// Closed, it opens again.
	fd, err = c.open(unix.O_RDWR)
	if err != nil {
		return fmt.Errorf("open after the first opener closed: %w; want success", err)
	}
	return unix.Close(fd)
}

// casePortNames: every case's port, and the console port, is under
// /sys/class/virtio-ports with its name and has its /dev node.
func casePortNames(c *caseCtx) error {
	const dir = "/sys/class/virtio-ports"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	byName := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "name"))
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		n := strings.TrimSpace(string(b))
		if prev, dup := byName[n]; dup {
			return fmt.Errorf("name %q on both %s and %s; want one port per name", n, prev, e.Name())
		}
		byName[n] = e.Name()
	}
	want := []string{"org.vmm.console"}
	for _, ac := range acceptCases {
		want = append(want, portPrefix+ac.name)
	}
	for _, n := range want {
		p, ok := byName[n]
		if !ok {
			return fmt.Errorf("no port named %q under %s; want one", n, dir)
		}
		var st unix.Stat_t
		if err := unix.Stat("/dev/"+p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
			return fmt.Errorf("/dev/%s (port %q): stat %v, mode %#o; want a char device", p, n, err, st.Mode)
		}
	}
	if len(byName) != len(want) {
		return fmt.Errorf("%d ports; want %d", len(byName), len(want))
	}
	// The console port is an hvc terminal, not a /dev/vport user.
	if _, err := os.Stat("/sys/class/tty/hvc0"); err != nil {
		return fmt.Errorf("console port: %v; want /sys/class/tty/hvc0", err)
	}
	logf("port_names n=%d", len(byName))
	return nil
}

// caseReadWithoutHost: with no host connected and no data, read is EOF
// (0), also on an O_NONBLOCK fd: the driver checks host_connected first.
func caseReadWithoutHost(c *caseCtx) error {
	for _, flags := range []int{unix.O_RDWR, unix.O_RDWR | unix.O_NONBLOCK} {
		fd, err := c.open(flags)
		if err != nil {
			return err
		}
		n, err := unix.Read(fd, make([]byte, 64))
		unix.Close(fd)
		if n != 0 || err != nil {
			return fmt.Errorf("read (flags %#x) with no host = %d, %v; want 0, nil (EOF)", flags, n, err)
		}
	}
	return nil
}

// caseLseekRefused: ports are not seekable (nonseekable_open, no_llseek).
func caseLseekRefused(c *caseCtx) error {
	fd, err := c.open(unix.O_RDWR)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, whence := range []int{unix.SEEK_SET, unix.SEEK_CUR, unix.SEEK_END} {
		if off, err := unix.Seek(fd, 0, whence); !errors.Is(err, unix.ESPIPE) {
			return fmt.Errorf("lseek(0, whence %d) = %d, %v; want ESPIPE", whence, off, err)
		}
	}
	if n, err := unix.Pread(fd, make([]byte, 8), 0); !errors.Is(err, unix.ESPIPE) {
		return fmt.Errorf("pread = %d, %v; want ESPIPE", n, err)
	}
	if n, err := unix.Pwrite(fd, make([]byte, 8), 0); !errors.Is(err, unix.ESPIPE) {
		return fmt.Errorf("pwrite = %d, %v; want ESPIPE", n, err)
	}
	return nil
}
