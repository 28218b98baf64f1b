package machine

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// VMFile returns a new file for the VM's fd (a dup; the caller closes
// it). KVM destroys a VM when its last fd and vCPU fd are closed; a
// process that holds this file past Close takes over that destruction,
// which waits on KVM's grace periods for the in-kernel irqchip and PIT
// (15–25 ms here, whole-process exit included) — see cmd/vmm's reaper.
func (m *Machine) VMFile() (*os.File, error) {
	if m.vm == nil {
		return nil, errors.New("no VM")
	}
	fd, err := unix.FcntlInt(uintptr(m.vm.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup the VM fd: %w", err)
	}
	return os.NewFile(uintptr(fd), "kvm-vm"), nil
}
