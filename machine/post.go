package machine

import (
	"golang.org/x/sys/unix"

	"vmm/kvm"
)

// absorbPostPort lets KVM swallow writes to port 0x80 (POST codes and
// Linux's I/O delay) without an exit to userspace: an exit costs about
// three times an ioeventfd on our hosts, and nothing reads the port.
// Nobody reads the eventfd either; the kernel saturates its counter.
func (m *Machine) absorbPostPort() error {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return err
	}
	m.postFD = fd
	return m.vm.IOEventFD(kvm.IOEventFD{Addr: postPort, Len: 1, FD: fd, PIO: true})
}
