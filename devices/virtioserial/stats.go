package virtioserial

import "time"

// PortStats is a snapshot of one port's state.
type PortStats struct {
	ID            uint32
	Name          string
	DevID         string // -device id= (PortConfig.ID)
	Chardev       string // the backend's id
	Console       bool
	Ready         bool // the guest driver set the port up
	GuestOpen     bool
	HostConnected bool
	Throttled     bool   // guest→host data is held because the host is not taking it
	BytesIn       uint64 // host→guest
	BytesOut      uint64 // guest→host
	BytesHeld     uint64 // guest data held in its queue for the host
	Dropped       uint64 // bytes dropped: console with no host, reset, unplug
	// ConsoleOverflow is console output the host was too slow for: the
	// oldest bytes of the bounded console ring, overwritten.
	ConsoleOverflow uint64
	Throttles       uint64 // times the port became throttled
	// ThrottledTime is the total time guest→host data waited for the
	// host, the current wait included.
	ThrottledTime time.Duration
	Connections   uint64 // host connections seen
}

// Stats returns every port's state, by port number.
func (d *Device) Stats() []PortStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []PortStats
	for _, p := range d.sortedPortsLocked() {
		out = append(out, p.statsLocked())
	}
	return out
}

// statsLocked is the port's snapshot. Caller holds the device's mu.
func (p *Port) statsLocked() PortStats {
	var overflow uint64
	if p.consoleBuf != nil {
		overflow = p.consoleBuf.Dropped()
	}
	return PortStats{
		ConsoleOverflow: overflow,
		ID:              p.id, Name: p.name, DevID: p.devID, Chardev: p.backend.ID(),
		Console: p.console, Ready: p.ready,
		GuestOpen: p.guestOpen, HostConnected: p.connected, Throttled: p.throttled,
		BytesIn: p.bytesIn, BytesOut: p.bytesOut, BytesHeld: p.heldBytes(),
		Dropped: p.dropped, Throttles: p.throttles, Connections: p.connections,
		ThrottledTime: p.throttledTime(),
	}
}

// setThrottled records the port starting or stopping to wait for its
// host. Caller holds the device's mu.
func (p *Port) setThrottled(on bool) {
	switch {
	case on && !p.throttled:
		p.throttles++
		p.throttledAt = time.Now()
	case !on && p.throttled:
		p.throttledT += time.Since(p.throttledAt)
	}
	p.throttled = on
}

// throttledTime is the total time throttled. Caller holds mu.
func (p *Port) throttledTime() time.Duration {
	if p.throttled {
		return p.throttledT + time.Since(p.throttledAt)
	}
	return p.throttledT
}
