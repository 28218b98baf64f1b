package machine

import (
	"vmm/devices"
)

// panicked is the pvpanic device's report (on a vCPU thread).
func (m *Machine) panicked(events byte) {
	if m.cfg.Panicked != nil {
		m.cfg.Panicked(events)
		return
	}
	if events&devices.PanicPanicked != 0 {
		m.stop(Exit{Status: 1, Reason: "guest panicked (pvpanic)"})
	}
}

// End ends the VM with a status of the caller's choosing (a guest panic
// under -action panic=exit-failure ends with 1).
func (m *Machine) End(status int, reason string) {
	m.stop(Exit{Status: status, Reason: reason})
}
