package virtioserial

import (
	"log/slog"
	"time"
)

// guestLogInterval is the least time between two log lines of one cause
// the guest can trigger: a guest that repeats a mistake in a loop must
// not flood the host's log. Every occurrence is still counted.
const guestLogInterval = 10 * time.Second

// guestLog rate-limits and counts the log lines a guest triggers, per
// cause. Its fields are guarded by the device's mu.
type guestLog struct {
	counts map[string]uint64
	last   map[string]time.Time // when the cause was last logged
	now    func() time.Time     // time.Now; tests replace it
}

// warn counts one occurrence of cause and logs it, with the count so
// far, unless the cause was logged less than guestLogInterval ago.
// Caller holds the device's mu.
func (g *guestLog) warn(cause string, args ...any) {
	if g.counts == nil {
		g.counts, g.last = map[string]uint64{}, map[string]time.Time{}
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.counts[cause]++
	now := g.now()
	if last, ok := g.last[cause]; ok && now.Sub(last) < guestLogInterval {
		return
	}
	g.last[cause] = now
	slog.Warn("virtio-serial: "+cause, append(args, "occurrences", g.counts[cause])...)
}

// GuestErrors returns how many times the guest triggered each logged
// cause (bad control messages, unknown ports…), logged or not.
func (d *Device) GuestErrors() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(d.guestLog.counts))
	for k, v := range d.guestLog.counts {
		out[k] = v
	}
	return out
}
