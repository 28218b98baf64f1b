package pci

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// IRQFDBinder is the KVM part IRQFDVectors needs; *kvm.VM satisfies it.
type IRQFDBinder interface {
	IRQFD(fd int, gsi uint32) error
	IRQFDDeassign(fd int, gsi uint32) error
}

// IRQFDVectors is an MSIXSink that gives each vector its own GSI (from
// an MSIRouter) and eventfd (bound to that GSI with irqfd), so a Trigger
// is one eventfd write and KVM injects the message in the kernel.
type IRQFDVectors struct {
	router MSIRouter
	vm     IRQFDBinder
	gsis   []uint32
	fds    []int
	bound  int
}

// NewIRQFDVectors allocates n GSIs and eventfds and binds them.
func NewIRQFDVectors(n int, router MSIRouter, vm IRQFDBinder) (*IRQFDVectors, error) {
	v := &IRQFDVectors{router: router, vm: vm}
	for i := range n {
		gsi, err := router.AllocGSI()
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("MSI-X vector %d: %w", i, err)
		}
		v.gsis = append(v.gsis, gsi)
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("MSI-X vector %d: eventfd: %w", i, err)
		}
		v.fds = append(v.fds, fd)
		if err := vm.IRQFD(fd, gsi); err != nil {
			v.Close()
			return nil, fmt.Errorf("MSI-X vector %d: %w", i, err)
		}
		v.bound++
	}
	return v, nil
}

// GSI returns vector i's GSI; FD its eventfd.
func (v *IRQFDVectors) GSI(i int) uint32 { return v.gsis[i] }
func (v *IRQFDVectors) FD(i int) int     { return v.fds[i] }

// Route implements MSIXSink.
func (v *IRQFDVectors) Route(i int, addr uint64, data uint32) error {
	return v.router.SetMSIRoute(v.gsis[i], addr, data)
}

// Trigger implements MSIXSink. A full counter (EAGAIN) already means an
// injection is pending.
func (v *IRQFDVectors) Trigger(i int) {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(v.fds[i], one[:])
}

// Close unbinds and closes the eventfds and frees the GSIs.
func (v *IRQFDVectors) Close() error {
	var errs []error
	for i, fd := range v.fds {
		if i < v.bound {
			errs = append(errs, v.vm.IRQFDDeassign(fd, v.gsis[i]))
		}
		errs = append(errs, unix.Close(fd))
	}
	for _, gsi := range v.gsis {
		errs = append(errs, v.router.FreeGSI(gsi))
	}
	v.fds, v.gsis, v.bound = nil, nil, 0
	return errors.Join(errs...)
}
