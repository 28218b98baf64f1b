package soak

import "fmt"

// Backend is the host character device behind a port.
type Backend string

const (
	Socket Backend = "socket"
	Pty    Backend = "pty"
	Pipe   Backend = "pipe"
)

// MaxPorts is the most ports vmm offers (virtio-serial max_ports ≤ 31).
const MaxPorts = 31

// guestJobs is the test guest's limit on concurrent vs jobs (MAX_JOBS in
// tests/guest/vs.c): with more than 16 ports some carry guest→host only.
const guestJobs = 32

// PortSpec is one port of the soak: its name in the guest, its backend
// and which streams it carries (guest→host always).
type PortSpec struct {
	Index       int     `json:"index"`
	Name        string  `json:"name"`
	Backend     Backend `json:"backend"`
	HostToGuest bool    `json:"host_to_guest"`
}

// Layout assigns backends: with 3 or more ports the last is a pipe on
// FIFOs and the one before it a pty; with 2 the last is a pipe; the rest
// are unix sockets (server=on,wait=off), where peers come and go.
func Layout(n int) ([]PortSpec, error) {
	if n < 1 || n > MaxPorts {
		return nil, fmt.Errorf("--ports %d: want 1..%d", n, MaxPorts)
	}
	both := min(n, guestJobs-n) // ports 0..both-1 carry both directions
	ps := make([]PortSpec, n)
	for i := range ps {
		ps[i] = PortSpec{Index: i, Name: fmt.Sprintf("p%d", i), Backend: Socket, HostToGuest: i < both}
	}
	if n >= 2 {
		ps[n-1].Backend = Pipe
	}
	if n >= 3 {
		ps[n-2].Backend = Pty
	}
	return ps, nil
}
