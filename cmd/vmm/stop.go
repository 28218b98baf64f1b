package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"vmm/chardev"
	"vmm/machine"
)

// stopper ends the VM from the host side (Ctrl-A x, a signal), also
// before the VM exists: start-up may wait for a socket client, and a
// user must be able to give up then.
type stopper struct {
	mu sync.Mutex
	// The fields below are guarded by mu.
	m     *machine.Machine
	early []func() // undo start-up before exiting early (terminal modes)
}

// stop ends the VM, or vmm itself if the VM does not exist yet.
func (s *stopper) stop(reason string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil {
		s.m.Stop(reason)
		return
	}
	for _, f := range s.early {
		f()
	}
	if !strings.HasPrefix(reason, "signal ") { // a signal has its own line
		fmt.Fprintf(os.Stderr, "vmm: %s before the VM started\n", reason)
	}
	os.Exit(status)
}

// set hands over to the machine.
func (s *stopper) set(m *machine.Machine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m = m
}

// onEarlyExit registers f to run if vmm exits before the VM exists.
func (s *stopper) onEarlyExit(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.early = append(s.early, f)
}

// setEscape puts QEMU's Ctrl-A keys on a stdio chardev (every stdio
// chardev is muxed, as QEMU's -serial mon:stdio and mux=on are).
func (c *chardevSpec) setEscape(stop *stopper) {
	st, ok := c.backend.(*chardev.Stdio)
	if !ok {
		return
	}
	st.SetEscape(&chardev.Escape{
		OnQuit: func() { stop.stop("Ctrl-A x", 0) },
		OnHelp: func() { io.WriteString(os.Stderr, chardev.EscapeHelp) },
	})
	stop.onEarlyExit(func() { st.Close() })
}

// announceWait says on stderr what a socket server with wait=on waits
// for, as QEMU's "info: QEMU waiting for connection on: …" does:
// otherwise start-up looks hung.
func (c *chardevSpec) announceWait() {
	if c.waitsFor == "" {
		return
	}
	hint := "connect a client"
	if path, ok := strings.CutPrefix(c.waitsFor, "unix:"); ok {
		hint += ", e.g. socat - UNIX-CONNECT:" + path
	} else {
		addr := strings.TrimPrefix(c.waitsFor, "tcp:")
		if strings.HasPrefix(addr, ":") {
			addr = "localhost" + addr // all addresses
		}
		hint += ", e.g. socat - TCP:" + addr
	}
	fmt.Fprintf(os.Stderr, "vmm: info: waiting for a connection on %s (chardev %s, server=on,wait=on): %s; wait=off starts without one\n", c.waitsFor, c.id, hint)
}
