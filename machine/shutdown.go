package machine

import (
	"fmt"
	"log/slog"
)

// shutdown is a triple fault. It resets a PC; vmm ends the VM, as QEMU's
// -no-reboot does. Linux's reboot=t (and the test guest's `triplefault`)
// ask for it on purpose: they load an empty IDT and raise an exception.
// With an IDT in place, the guest crashed (a kernel that fails early,
// such as a truncated bzImage, ends this way): that is reported and ends
// with status 1, so a script cannot mistake it for a reboot.
func (v *vcpu) shutdown() Exit {
	sregs, err := v.cpu.Sregs()
	if err != nil || sregs.IDT.Limit == 0 {
		return Exit{Status: 0, Reason: fmt.Sprintf("vCPU %d: guest reset (triple fault)", v.id)}
	}
	where := ""
	if regs, err := v.cpu.Regs(); err == nil {
		where = fmt.Sprintf(" at rip %#x", regs.RIP)
	}
	slog.Debug("triple fault", "vcpu", v.id, "idt", fmt.Sprintf("%#x+%#x", sregs.IDT.Base, sregs.IDT.Limit), "cr0", fmt.Sprintf("%#x", sregs.CR0))
	return Exit{Status: 1, Err: fmt.Errorf("vCPU %d: the guest triple-faulted%s with its IDT in place: it crashed (a requested reboot empties the IDT first)", v.id, where)}
}
