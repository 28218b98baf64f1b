package main

import (
	"fmt"
	"os"
	"sync"

	"vmm/devices"
	"vmm/machine"
)

// panicStatus is vmm's exit status after a guest panic under
// -action panic=exit-failure (QEMU's exit-failure status too).
const panicStatus = 1

// onGuestPanic returns the pvpanic handler for -action panic=action. It
// runs on a vCPU thread, so it never waits for the vCPUs itself; *m is
// set before any vCPU runs.
func onGuestPanic(action string, m **machine.Machine) func(events byte) {
	var once sync.Once
	return func(events byte) {
		if events&devices.PanicCrashLoaded != 0 {
			fmt.Fprintln(os.Stderr, "vmm: the guest panicked and its crash kernel took over (pvpanic crash-loaded); the VM runs on")
		}
		if events&devices.PanicPanicked == 0 {
			return
		}
		switch action {
		case "exit-failure":
			fmt.Fprintf(os.Stderr, "vmm: the guest panicked (pvpanic); exit status %d (-action panic=exit-failure)\n", panicStatus)
			(*m).End(panicStatus, "guest panicked")
		case "shutdown":
			fmt.Fprintln(os.Stderr, "vmm: the guest panicked (pvpanic); exit status 0 (-action panic=shutdown)")
			(*m).End(0, "guest panicked")
		case "pause":
			once.Do(func() {
				fmt.Fprintln(os.Stderr, "vmm: the guest panicked (pvpanic); paused (-action panic=pause): QMP cont resumes it, Ctrl-A x or QMP quit ends vmm")
				go (*m).Pause()
			})
		default: // none
			once.Do(func() {
				fmt.Fprintln(os.Stderr, "vmm: the guest panicked (pvpanic); it runs on (-action panic=none)")
			})
		}
	}
}
