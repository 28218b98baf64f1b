package main

import (
	"log/slog"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"vmm/machine"
)

// The VM's kernel teardown, off vmm's exit path. KVM destroys a VM
// when its last reference goes; with the in-kernel irqchip and PIT that
// waits 15–25 ms on this host (KVM's SRCU/RCU grace periods, measured:
// close of the VM fd, or the same wait inside exit_group when vmm
// leaves the fd to the kernel), during which vmm uses no CPU but its
// parent's wait() has not returned. So when the VM has ended vmm hands a
// copy of the VM fd to a small detached helper (itself, as reaperArg),
// which holds it until vmm has exited and then exits, and the
// destruction happens there. Guest memory is still freed by vmm's own
// exit (KVM holds the mm_struct, not its pages).

// reaperArg is the helper's argv[1] (not a command users run).
const reaperArg = "__vm-reaper"

// startReaper hands the VM fd to the helper; on any error the VM is
// destroyed the ordinary way, by vmm's own close.
func startReaper(m *machine.Machine) {
	vm, err := m.VMFile()
	if err != nil {
		return
	}
	defer vm.Close()
	self, err := os.Executable()
	if err != nil {
		return
	}
	// The helper blocks reading the pipe until every copy of its write
	// end is gone: vmm's exit. The write end is close-on-exec, so no
	// other child inherits it, and a bare fd (no os.File, whose
	// finalizer would close it) that vmm never closes.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return
	}
	defer unix.Close(p[0])
	null, err := os.Open(os.DevNull)
	if err != nil {
		unix.Close(p[1])
		return
	}
	defer null.Close()
	// syscall.ForkExec, not os.StartProcess: the latter first probes
	// pidfd support with a fork of its own (a millisecond here). The
	// child is never waited for: init reaps it after vmm exits.
	_, err = syscall.ForkExec(self, []string{self, reaperArg}, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{null.Fd(), null.Fd(), null.Fd(), vm.Fd(), uintptr(p[0])},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		slog.Debug("VM reaper not started; closing the VM here", "err", err)
		unix.Close(p[1])
	}
}

// reap is the helper: fd 3 is the VM, fd 4 the pipe. It returns once
// vmm has exited; the VM goes with the helper's own exit.
func reap() {
	var b [1]byte
	for {
		n, err := syscall.Read(4, b[:])
		if n == 0 || (err != nil && err != syscall.EINTR) {
			return
		}
	}
}
