package kvm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine fd.
type VM struct {
	fd      int
	runSize int
}

// FD returns the VM's file descriptor.
func (v *VM) FD() int { return v.fd }

// Close closes the VM fd. vCPUs must be closed first.
func (v *VM) Close() error { return unix.Close(v.fd) }

// CheckExtension asks the VM (not the system) about capability c.
func (v *VM) CheckExtension(c int) (int, error) { return checkExtension(v.fd, c) }

// SetUserMemoryRegion maps host memory into the guest physical space.
func (v *VM) SetUserMemoryRegion(r UserMemoryRegion) error {
	if _, err := ioctl(v.fd, reqSetUserMemoryRegion, ptr(&r)); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION slot %d at %#x: %w", r.Slot, r.GuestPhysAddr, err)
	}
	return nil
}

// SetTSSAddr places the three pages KVM needs for real-mode emulation on Intel.
func (v *VM) SetTSSAddr(addr uint64) error {
	if _, err := ioctl(v.fd, reqSetTSSAddr, uintptr(addr)); err != nil {
		return fmt.Errorf("KVM_SET_TSS_ADDR %#x: %w", addr, err)
	}
	return nil
}

// SetIdentityMapAddr places the identity-map page KVM needs on Intel.
func (v *VM) SetIdentityMapAddr(addr uint64) error {
	if _, err := ioctl(v.fd, reqSetIdentityMapAddr, ptr(&addr)); err != nil {
		return fmt.Errorf("KVM_SET_IDENTITY_MAP_ADDR %#x: %w", addr, err)
	}
	return nil
}

// CreateIRQChip creates the in-kernel PIC, IOAPIC and per-vCPU LAPICs.
func (v *VM) CreateIRQChip() error {
	if _, err := ioctl(v.fd, reqCreateIRQChip, 0); err != nil {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// PITSpeakerDummy makes the in-kernel PIT answer port 0x61 itself.
const PITSpeakerDummy = 1

// CreatePIT2 creates the in-kernel i8254 PIT.
func (v *VM) CreatePIT2(flags uint32) error {
	c := pitConfig{Flags: flags}
	if _, err := ioctl(v.fd, reqCreatePIT2, ptr(&c)); err != nil {
		return fmt.Errorf("KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// IRQLine sets the level of a GSI on the in-kernel irqchip.
func (v *VM) IRQLine(gsi uint32, high bool) error {
	l := irqLevel{IRQ: gsi}
	if high {
		l.Level = 1
	}
	if _, err := ioctl(v.fd, reqIRQLine, ptr(&l)); err != nil {
		return fmt.Errorf("KVM_IRQ_LINE gsi %d: %w", gsi, err)
	}
	return nil
}

// IRQFD makes a write to eventfd fd raise gsi (edge) inside the kernel.
func (v *VM) IRQFD(fd int, gsi uint32) error {
	r := irqfd{FD: uint32(fd), GSI: gsi}
	if _, err := ioctl(v.fd, reqIRQFD, ptr(&r)); err != nil {
		return fmt.Errorf("KVM_IRQFD fd %d gsi %d: %w", fd, gsi, err)
	}
	return nil
}

// IRQFDDeassign removes an IRQFD binding.
func (v *VM) IRQFDDeassign(fd int, gsi uint32) error {
	r := irqfd{FD: uint32(fd), GSI: gsi, Flags: 1}
	if _, err := ioctl(v.fd, reqIRQFD, ptr(&r)); err != nil {
		return fmt.Errorf("KVM_IRQFD deassign fd %d gsi %d: %w", fd, gsi, err)
	}
	return nil
}

// IOEventFD options.
type IOEventFD struct {
	Addr      uint64
	Len       uint32 // 0 matches any length (MMIO only)
	FD        int
	PIO       bool
	Datamatch *uint64 // nil matches any value
	Deassign  bool
}

const (
	ioeventfdDatamatch = 1 << 0
	ioeventfdPIO       = 1 << 1
	ioeventfdDeassign  = 1 << 2
)

// IOEventFD makes guest writes to an address signal an eventfd inside
// the kernel, without an exit to userspace.
func (v *VM) IOEventFD(o IOEventFD) error {
	r := ioeventfd{Addr: o.Addr, Len: o.Len, FD: int32(o.FD)}
	if o.PIO {
		r.Flags |= ioeventfdPIO
	}
	if o.Datamatch != nil {
		r.Flags |= ioeventfdDatamatch
		r.Datamatch = *o.Datamatch
	}
	if o.Deassign {
		r.Flags |= ioeventfdDeassign
	}
	if _, err := ioctl(v.fd, reqIOEventFD, ptr(&r)); err != nil {
		return fmt.Errorf("KVM_IOEVENTFD %#x: %w", o.Addr, err)
	}
	return nil
}

// SetGSIRouting replaces the whole GSI routing table.
func (v *VM) SetGSIRouting(entries []RoutingEntry) error {
	buf := routingBuffer(entries)
	if _, err := ioctl(v.fd, reqSetGSIRouting, bytesPtr(buf)); err != nil {
		return fmt.Errorf("KVM_SET_GSI_ROUTING (%d entries): %w", len(entries), err)
	}
	return nil
}

// SignalMSI injects one MSI; it returns whether the guest accepted it.
func (v *VM) SignalMSI(m MSI) (bool, error) {
	r, err := ioctl(v.fd, reqSignalMSI, ptr(&m))
	if err != nil {
		return false, fmt.Errorf("KVM_SIGNAL_MSI %#x: %w", m.AddressLo, err)
	}
	return r > 0, nil
}

// CreateVCPU creates vCPU id and maps its kvm_run area. Call it on the
// OS thread that will run the vCPU.
func (v *VM) CreateVCPU(id int) (*VCPU, error) {
	r, err := ioctl(v.fd, reqCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU %d: %w", id, err)
	}
	c := &VCPU{fd: int(r), id: id}
	if err := c.mapRun(v.runSize); err != nil {
		unix.Close(c.fd)
		return nil, err
	}
	return c, nil
}
