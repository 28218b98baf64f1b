package kvm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The ioctls a snapshot needs beyond those that boot a VM. Numbers are
// built from <linux/kvm.h>; note KVM_SET_IRQCHIP is _IOR there (a
// historical mistake the kernel keeps), so it is ior here too.
var (
	reqGetMSRIndexList = iowr(0x02, 4)
	reqGetIRQChip      = iowr(0x62, sizeOf[IRQChip]())
	reqSetIRQChip      = ior(0x63, sizeOf[IRQChip]())
	reqSetClock        = iow(0x7b, sizeOf[ClockData]())
	reqGetClock        = ior(0x7c, sizeOf[ClockData]())
	reqGetPIT2         = ior(0x9f, sizeOf[PITState2]())
	reqSetPIT2         = iow(0xa0, sizeOf[PITState2]())
	reqGetDebugRegs    = ior(0xa1, sizeOf[DebugRegs]())
	reqSetDebugRegs    = iow(0xa2, sizeOf[DebugRegs]())
	reqSetTSCKHz       = io(0xa2)
	reqGetTSCKHz       = io(0xa3)
	reqGetXSave        = ior(0xa4, sizeOf[XSave]())
	reqSetXSave        = iow(0xa5, sizeOf[XSave]())
	reqKVMClockCtrl    = io(0xad)
)

// More capabilities (KVM_CAP_*).
const (
	CapPITState2    = 35
	CapAdjustClock  = 39
	CapVCPUEvents   = 41
	CapDebugRegs    = 50
	CapXSave        = 55
	CapGetTSCKHz    = 61
	CapKVMClockCtrl = 76
	CapXSave2       = 208
)

// DebugRegs is struct kvm_debugregs.
type DebugRegs struct {
	DB       [4]uint64
	DR6      uint64
	DR7      uint64
	Flags    uint64
	Reserved [9]uint64
}

// XSave is struct kvm_xsave without its flexible tail: the 4 KiB that
// KVM_GET_XSAVE fills (legacy area, header and the standard components).
type XSave struct {
	Region [1024]uint32
}

// IRQChip is struct kvm_irqchip: ChipID is IRQChipPICMaster, -Slave or
// -IOAPIC, and Chip holds struct kvm_pic_state or kvm_ioapic_state.
type IRQChip struct {
	ChipID uint32
	_      uint32
	Chip   [512]byte
}

// PITChannel is struct kvm_pit_channel_state.
type PITChannel struct {
	Count         uint32
	LatchedCount  uint16
	CountLatched  uint8
	StatusLatched uint8
	Status        uint8
	ReadState     uint8
	WriteState    uint8
	WriteLatch    uint8
	RWMode        uint8
	Mode          uint8
	BCD           uint8
	Gate          uint8
	CountLoadTime int64
}

// PITState2 is struct kvm_pit_state2.
type PITState2 struct {
	Channels [3]PITChannel
	Flags    uint32
	_        [9]uint32
}

// ClockData is struct kvm_clock_data: Clock is kvmclock in ns.
type ClockData struct {
	Clock    uint64
	Flags    uint32
	_        uint32
	Realtime uint64
	HostTSC  uint64
	_        [4]uint32
}

// ClockTSCStable is the flag KVM_GET_CLOCK reports and KVM_SET_CLOCK refuses.
const ClockTSCStable = 2

// MSRIndexList returns KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and
// restores for a guest, the list a snapshot carries.
func (s *System) MSRIndexList() ([]uint32, error) {
	n := 64
	for range 8 {
		idx, need, err := getMSRIndexList(s.fd, n)
		if errors.Is(err, unix.E2BIG) && need > n {
			n = need
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("KVM_GET_MSR_INDEX_LIST: %w", err)
		}
		return idx, nil
	}
	return nil, errors.New("KVM_GET_MSR_INDEX_LIST: the list kept growing")
}

// XSave2Size returns the kvm_xsave size KVM_CAP_XSAVE2 reports, 0 without it.
func (s *System) XSave2Size() (int, error) { return s.CheckExtension(CapXSave2) }

func (v *VM) do(req, arg uintptr, name string) error {
	if _, err := ioctl(v.fd, req, arg); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// IRQChip returns the state of in-kernel chip id (IRQChipPICMaster …).
func (v *VM) IRQChip(id uint32) (IRQChip, error) {
	c := IRQChip{ChipID: id}
	return c, v.do(reqGetIRQChip, ptr(&c), fmt.Sprintf("KVM_GET_IRQCHIP %d", id))
}

// SetIRQChip sets the state of the chip c.ChipID names.
func (v *VM) SetIRQChip(c IRQChip) error {
	return v.do(reqSetIRQChip, ptr(&c), fmt.Sprintf("KVM_SET_IRQCHIP %d", c.ChipID))
}

// PIT2 returns the in-kernel PIT's state.
func (v *VM) PIT2() (PITState2, error) {
	var p PITState2
	return p, v.do(reqGetPIT2, ptr(&p), "KVM_GET_PIT2")
}

// SetPIT2 sets the in-kernel PIT's state.
func (v *VM) SetPIT2(p PITState2) error { return v.do(reqSetPIT2, ptr(&p), "KVM_SET_PIT2") }

// Clock returns the VM's kvmclock.
func (v *VM) Clock() (ClockData, error) {
	var c ClockData
	return c, v.do(reqGetClock, ptr(&c), "KVM_GET_CLOCK")
}

// SetClock sets the VM's kvmclock to c.Clock; flags KVM does not take
// on a set are cleared.
func (v *VM) SetClock(c ClockData) error {
	c.Flags &^= ClockTSCStable
	return v.do(reqSetClock, ptr(&c), "KVM_SET_CLOCK")
}

// DebugRegs returns DR0-3, DR6 and DR7.
func (c *VCPU) DebugRegs() (DebugRegs, error) {
	var d DebugRegs
	return d, c.get(reqGetDebugRegs, ptr(&d), "KVM_GET_DEBUGREGS")
}

// SetDebugRegs sets DR0-3, DR6 and DR7.
func (c *VCPU) SetDebugRegs(d DebugRegs) error {
	return c.get(reqSetDebugRegs, ptr(&d), "KVM_SET_DEBUGREGS")
}

// XSave returns the XSAVE area (KVM_CAP_XSAVE).
func (c *VCPU) XSave() (XSave, error) {
	var x XSave
	return x, c.get(reqGetXSave, ptr(&x), "KVM_GET_XSAVE")
}

// SetXSave sets the XSAVE area.
func (c *VCPU) SetXSave(x XSave) error { return c.get(reqSetXSave, ptr(&x), "KVM_SET_XSAVE") }

// TSCKHz returns the vCPU's TSC frequency.
func (c *VCPU) TSCKHz() (uint32, error) {
	r, err := ioctl(c.fd, reqGetTSCKHz, 0)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_TSC_KHZ vCPU %d: %w", c.id, err)
	}
	return uint32(r), nil
}

// SetTSCKHz asks KVM to scale the vCPU's TSC to khz (KVM_CAP_TSC_CONTROL).
func (c *VCPU) SetTSCKHz(khz uint32) error {
	return c.get(reqSetTSCKHz, uintptr(khz), "KVM_SET_TSC_KHZ")
}

// ErrNoKVMClock is what KVMClockCtrl returns when the guest has not
// enabled kvmclock on the vCPU (nothing to tell it then).
var ErrNoKVMClock = errors.New("kvmclock not enabled by the guest")

// KVMClockCtrl tells the guest, through its kvmclock page, that the host
// stopped it, so its soft-lockup watchdog does not count the pause.
func (c *VCPU) KVMClockCtrl() error {
	if _, err := ioctl(c.fd, reqKVMClockCtrl, 0); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return ErrNoKVMClock
		}
		return fmt.Errorf("KVM_KVMCLOCK_CTRL vCPU %d: %w", c.id, err)
	}
	return nil
}

// Flags in VCPUEvents.Flags that make KVM_SET_VCPU_EVENTS take the NMI
// pending count and the SIPI vector (GET fills them without flagging).
const (
	VCPUEventValidNMIPending = 1 << 0
	VCPUEventValidSIPIVector = 1 << 1
)

// MSRsPartial reads the MSRs whose Index fields are set, filling Data,
// and returns how many KVM read: it stops at the first MSR the vCPU does
// not have.
func (c *VCPU) MSRsPartial(entries []MSREntry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	buf := msrsBuffer(entries)
	r, err := ioctl(c.fd, reqGetMSRs, bytesPtr(buf))
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_MSRS vCPU %d: %w", c.id, err)
	}
	n := min(int(r), len(entries))
	msrsEntries(buf, entries[:n])
	return n, nil
}
