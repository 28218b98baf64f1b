package virtioserial

import "vmm/devices/guestlog"

// newGuestLog is the device's limiter of guest-caused warnings (bad
// control messages, unknown ports…): a guest that repeats a mistake in a
// loop gets one line per cause and guestlog.Interval, and every
// occurrence is counted.
func newGuestLog() *guestlog.Limiter { return &guestlog.Limiter{Prefix: "virtio-serial: "} }

// GuestErrors returns how many times the guest triggered each logged
// cause, logged or not.
func (d *Device) GuestErrors() map[string]uint64 { return d.guestLog.Counts() }
