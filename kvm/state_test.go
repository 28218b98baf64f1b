package kvm

import (
	"errors"
	"slices"
	"testing"
	"unsafe"
)

// Sizes from <linux/kvm.h> on x86-64 (checked with a C program against
// the host's headers); the ioctl numbers are built from them.
func TestStateStructSizes(t *testing.T) {
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"kvm_debugregs", unsafe.Sizeof(DebugRegs{}), 128},
		{"kvm_irqchip", unsafe.Sizeof(IRQChip{}), 520},
		{"kvm_pit_channel_state", unsafe.Sizeof(PITChannel{}), 24},
		{"kvm_pit_state2", unsafe.Sizeof(PITState2{}), 112},
		{"kvm_clock_data", unsafe.Sizeof(ClockData{}), 48},
		{"kvm_xsave", unsafe.Sizeof(XSave{}), 4096},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("sizeof(%s) = %d; want %d", tt.name, tt.got, tt.want)
		}
	}
	reqs := []struct {
		name      string
		got, want uintptr
	}{
		{"KVM_GET_IRQCHIP", reqGetIRQChip, 0xc208ae62},
		{"KVM_SET_IRQCHIP", reqSetIRQChip, 0x8208ae63},
		{"KVM_GET_PIT2", reqGetPIT2, 0x8070ae9f},
		{"KVM_SET_PIT2", reqSetPIT2, 0x4070aea0},
		{"KVM_GET_CLOCK", reqGetClock, 0x8030ae7c},
		{"KVM_SET_CLOCK", reqSetClock, 0x4030ae7b},
		{"KVM_GET_DEBUGREGS", reqGetDebugRegs, 0x8080aea1},
		{"KVM_SET_DEBUGREGS", reqSetDebugRegs, 0x4080aea2},
		{"KVM_GET_XSAVE", reqGetXSave, 0x9000aea4},
		{"KVM_SET_XSAVE", reqSetXSave, 0x5000aea5},
		{"KVM_KVMCLOCK_CTRL", reqKVMClockCtrl, 0xaead},
		{"KVM_GET_MSR_INDEX_LIST", reqGetMSRIndexList, 0xc004ae02},
		{"KVM_GET_TSC_KHZ", reqGetTSCKHz, 0xaea3},
	}
	for _, r := range reqs {
		if r.got != r.want {
			t.Errorf("%s = %#x; want %#x", r.name, r.got, r.want)
		}
	}
}

// TestVMStateRoundTrip: what a snapshot reads from a VM's irqchip, PIT,
// clock and a vCPU's debug registers can be written back, and changes
// written are read back.
func TestVMStateRoundTrip(t *testing.T) {
	v := newTestVM(t, []byte{0xf4}, true)
	for _, id := range []uint32{IRQChipPICMaster, IRQChipPICSlave, IRQChipIOAPIC} {
		c, err := v.vm.IRQChip(id)
		if err != nil {
			t.Fatal(err)
		}
		if id == IRQChipPICMaster {
			c.Chip[2] = 0xfb // imr: all masked but the cascade
		}
		if err := v.vm.SetIRQChip(c); err != nil {
			t.Fatal(err)
		}
		got, err := v.vm.IRQChip(id)
		if err != nil || got != c {
			t.Errorf("IRQChip(%d) after SetIRQChip = %v (err %v); want what was set", id, got.Chip[:16], err)
		}
	}
	if err := v.vm.SetIRQChip(IRQChip{ChipID: 7}); err == nil {
		t.Error("SetIRQChip(chip 7) = nil; want an error")
	}
	pit, err := v.vm.PIT2()
	if err != nil {
		t.Fatal(err)
	}
	pit.Channels[2].Gate = 0
	if err := v.vm.SetPIT2(pit); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.vm.PIT2(); got.Channels[2].Gate != 0 {
		t.Errorf("PIT2 channel 2 gate = %d; want 0", got.Channels[2].Gate)
	}
	clk, err := v.vm.Clock()
	if err != nil {
		t.Fatal(err)
	}
	clk.Clock += 5e9
	if err := v.vm.SetClock(clk); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.vm.Clock(); got.Clock < clk.Clock {
		t.Errorf("Clock() after SetClock(%d) = %d; want at least that", clk.Clock, got.Clock)
	}
	d, err := v.cpu.DebugRegs()
	if err != nil {
		t.Fatal(err)
	}
	d.DB[1] = 0x1234000
	if err := v.cpu.SetDebugRegs(d); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.cpu.DebugRegs(); got.DB[1] != 0x1234000 {
		t.Errorf("DebugRegs().DB[1] = %#x; want 0x1234000", got.DB[1])
	}
	if err := v.cpu.KVMClockCtrl(); !errors.Is(err, ErrNoKVMClock) {
		t.Errorf("KVMClockCtrl() on a guest without kvmclock = %v; want ErrNoKVMClock", err)
	}
	if n, _ := v.sys.CheckExtension(CapXSave); n > 0 {
		x, err := v.cpu.XSave()
		if err != nil {
			t.Fatal(err)
		}
		if err := v.cpu.SetXSave(x); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := v.sys.CheckExtension(CapGetTSCKHz); n > 0 {
		if khz, err := v.cpu.TSCKHz(); err != nil || khz == 0 {
			t.Errorf("TSCKHz() = %d, %v; want a frequency", khz, err)
		}
	}
}

// TestMSRIndexList: the list names the MSRs a snapshot must carry: the
// TSC and kvmclock's.
func TestMSRIndexList(t *testing.T) {
	v := newTestVM(t, []byte{0xf4}, false)
	idx, err := v.sys.MSRIndexList()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint32{0x10, 0x4b564d01} { // IA32_TSC, MSR_KVM_SYSTEM_TIME_NEW
		if !slices.Contains(idx, want) {
			t.Errorf("MSRIndexList() = %#x; want it to hold %#x", idx, want)
		}
	}
	// A buffer too small is refused with E2BIG, which MSRIndexList grows past.
	short, _, err := getMSRIndexList(v.sys.fd, 1)
	if err == nil {
		t.Errorf("getMSRIndexList(room 1) = %d entries, nil; want E2BIG", len(short))
	}
}
