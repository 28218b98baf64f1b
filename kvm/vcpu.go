package kvm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// VCPU is one virtual CPU. Its ioctls must come from the thread that
// created it (KVM_RUN from any other thread is slow or refused).
type VCPU struct {
	fd  int
	id  int
	run *Run
}

// ID returns the vCPU index given at creation.
func (c *VCPU) ID() int { return c.id }

// FD returns the vCPU file descriptor.
func (c *VCPU) FD() int { return c.fd }

// Run returns the mmapped kvm_run area.
func (c *VCPU) Run() *Run { return c.run }

// Close unmaps kvm_run and closes the vCPU.
func (c *VCPU) Close() error {
	err := c.unmapRun()
	if cerr := unix.Close(c.fd); err == nil {
		err = cerr
	}
	return err
}

// Exec is one KVM_RUN. EINTR (a signal or immediate_exit) is returned
// as is, so the caller can check whether it was asked to stop.
func (c *VCPU) Exec() error {
	_, err := ioctl(c.fd, reqRun, 0)
	return err
}

func (c *VCPU) get(req uintptr, arg uintptr, name string) error {
	if _, err := ioctl(c.fd, req, arg); err != nil {
		return fmt.Errorf("%s vCPU %d: %w", name, c.id, err)
	}
	return nil
}

// Regs returns the general-purpose registers.
func (c *VCPU) Regs() (Regs, error) {
	var r Regs
	return r, c.get(reqGetRegs, ptr(&r), "KVM_GET_REGS")
}

// SetRegs sets the general-purpose registers.
func (c *VCPU) SetRegs(r Regs) error { return c.get(reqSetRegs, ptr(&r), "KVM_SET_REGS") }

// Sregs returns the special registers.
func (c *VCPU) Sregs() (Sregs, error) {
	var s Sregs
	return s, c.get(reqGetSregs, ptr(&s), "KVM_GET_SREGS")
}

// SetSregs sets the special registers.
func (c *VCPU) SetSregs(s Sregs) error { return c.get(reqSetSregs, ptr(&s), "KVM_SET_SREGS") }

// FPU returns the x87/SSE state.
func (c *VCPU) FPU() (FPU, error) {
	var f FPU
	return f, c.get(reqGetFPU, ptr(&f), "KVM_GET_FPU")
}

// SetFPU sets the x87/SSE state.
func (c *VCPU) SetFPU(f FPU) error { return c.get(reqSetFPU, ptr(&f), "KVM_SET_FPU") }

// MSRs reads the MSRs whose Index fields are set; Data is filled in.
func (c *VCPU) MSRs(entries []MSREntry) error {
	buf := msrsBuffer(entries)
	r, err := ioctl(c.fd, reqGetMSRs, bytesPtr(buf))
	if err != nil {
		return fmt.Errorf("KVM_GET_MSRS vCPU %d: %w", c.id, err)
	}
	if int(r) != len(entries) {
		return fmt.Errorf("KVM_GET_MSRS vCPU %d: read %d of %d MSRs (first unreadable %#x)", c.id, r, len(entries), entries[r].Index)
	}
	msrsEntries(buf, entries)
	return nil
}

// SetMSRs writes MSRs.
func (c *VCPU) SetMSRs(entries []MSREntry) error {
	buf := msrsBuffer(entries)
	r, err := ioctl(c.fd, reqSetMSRs, bytesPtr(buf))
	if err != nil {
		return fmt.Errorf("KVM_SET_MSRS vCPU %d: %w", c.id, err)
	}
	if int(r) != len(entries) {
		return fmt.Errorf("KVM_SET_MSRS vCPU %d: wrote %d of %d MSRs (first refused %#x)", c.id, r, len(entries), entries[r].Index)
	}
	return nil
}

// SetCPUID2 sets the CPUID the guest sees on this vCPU.
func (c *VCPU) SetCPUID2(entries []CPUIDEntry) error {
	if err := setCPUID2(c.fd, entries); err != nil {
		return fmt.Errorf("KVM_SET_CPUID2 vCPU %d: %w", c.id, err)
	}
	return nil
}

// LAPIC returns the local APIC register page.
func (c *VCPU) LAPIC() (LAPICState, error) {
	var l LAPICState
	return l, c.get(reqGetLAPIC, ptr(&l), "KVM_GET_LAPIC")
}

// SetLAPIC sets the local APIC register page.
func (c *VCPU) SetLAPIC(l LAPICState) error { return c.get(reqSetLAPIC, ptr(&l), "KVM_SET_LAPIC") }

// MPState returns KVM_MP_STATE_*.
func (c *VCPU) MPState() (uint32, error) {
	var s uint32
	return s, c.get(reqGetMPState, ptr(&s), "KVM_GET_MP_STATE")
}

// SetMPState sets KVM_MP_STATE_*.
func (c *VCPU) SetMPState(s uint32) error { return c.get(reqSetMPState, ptr(&s), "KVM_SET_MP_STATE") }

// Events returns pending exceptions, interrupts, NMIs and SIPIs.
func (c *VCPU) Events() (VCPUEvents, error) {
	var e VCPUEvents
	return e, c.get(reqGetVCPUEvents, ptr(&e), "KVM_GET_VCPU_EVENTS")
}

// XCRs returns the extended control registers (XCR0).
func (c *VCPU) XCRs() (XCRs, error) {
	var x XCRs
	return x, c.get(reqGetXCRs, ptr(&x), "KVM_GET_XCRS")
}

// SetXCRs sets the extended control registers.
func (c *VCPU) SetXCRs(x XCRs) error { return c.get(reqSetXCRs, ptr(&x), "KVM_SET_XCRS") }

// SetEvents sets pending events.
func (c *VCPU) SetEvents(e VCPUEvents) error {
	return c.get(reqSetVCPUEvents, ptr(&e), "KVM_SET_VCPU_EVENTS")
}
