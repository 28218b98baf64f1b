package kvm

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// testVM is a VM with 64 KiB of RAM at guest address 0 and one vCPU in
// real mode at 0x1000, where code is placed.
type testVM struct {
	sys  *System
	vm   *VM
	cpu  *VCPU
	mem  []byte
	code []byte
}

func newTestVM(t *testing.T, code []byte, irqchip bool) *testVM {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	sys, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	mem, err := unix.Mmap(-1, 0, 0x10000, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	copy(mem[0x1000:], code)
	if err := vm.SetTSSAddr(0xfffbd000); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetIdentityMapAddr(0xfffbc000); err != nil {
		t.Fatal(err)
	}
	if irqchip {
		if err := vm.CreateIRQChip(); err != nil {
			t.Fatal(err)
		}
		if err := vm.CreatePIT2(PITSpeakerDummy); err != nil {
			t.Fatal(err)
		}
	}
	if err := vm.SetUserMemoryRegion(UserMemoryRegion{Slot: 0, MemorySize: uint64(len(mem)), UserspaceAddr: uint64(bytesPtr(mem))}); err != nil {
		t.Fatal(err)
	}
	cpu, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cpu.Close() })
	sregs, err := cpu.Sregs()
	if err != nil {
		t.Fatal(err)
	}
	sregs.CS.Base, sregs.CS.Selector = 0, 0
	if err := cpu.SetSregs(sregs); err != nil {
		t.Fatal(err)
	}
	if err := cpu.SetRegs(Regs{RIP: 0x1000, RFLAGS: 2}); err != nil {
		t.Fatal(err)
	}
	return &testVM{sys: sys, vm: vm, cpu: cpu, mem: mem, code: code}
}

// runUntilIO runs until the next exit and requires it to be an OUT.
func (v *testVM) runUntilIO(t *testing.T) IO {
	t.Helper()
	if err := v.cpu.Exec(); err != nil {
		t.Fatalf("KVM_RUN: %v", err)
	}
	if r := v.cpu.Run().ExitReason(); r != ExitIO {
		regs, _ := v.cpu.Regs()
		t.Fatalf("exit reason = %s at rip %#x; want IO", ExitName(r), regs.RIP)
	}
	io, err := v.cpu.Run().IO()
	if err != nil {
		t.Fatal(err)
	}
	return io
}

func TestSystem(t *testing.T) {
	if err := Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	sys, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	if v, err := sys.APIVersion(); err != nil || v != APIVersion {
		t.Errorf("APIVersion() = %d, %v; want %d", v, err, APIVersion)
	}
	for _, c := range []int{CapUserMemory, CapIRQChip, CapIRQFD, CapIOEventFD, CapIRQRouting, CapPIT2, CapSignalMSI, CapImmediateExit} {
		if n, err := sys.CheckExtension(c); err != nil || n == 0 {
			t.Errorf("CheckExtension(%d) = %d, %v; want > 0", c, n, err)
		}
	}
	if n, err := sys.VCPUMmapSize(); err != nil || n < 4096 {
		t.Errorf("VCPUMmapSize() = %d, %v; want >= 4096", n, err)
	}
	if n, err := sys.MaxVCPUs(); err != nil || n < 1 {
		t.Errorf("MaxVCPUs() = %d, %v; want >= 1", n, err)
	}
	cpuid, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	var leaf0 *CPUIDEntry
	for i := range cpuid {
		if cpuid[i].Function == 0 {
			leaf0 = &cpuid[i]
		}
	}
	if leaf0 == nil || leaf0.EAX == 0 {
		t.Fatalf("SupportedCPUID() has no leaf 0 with a max leaf: %+v", leaf0)
	}
	vendor := make([]byte, 12)
	binary.LittleEndian.PutUint32(vendor[0:], leaf0.EBX)
	binary.LittleEndian.PutUint32(vendor[4:], leaf0.EDX)
	binary.LittleEndian.PutUint32(vendor[8:], leaf0.ECX)
	if s := string(vendor); s != "GenuineIntel" && s != "AuthenticAMD" && s != "HygonGenuine" {
		t.Errorf("CPUID vendor = %q; want a known x86 vendor", s)
	}
}

// TestRunPIO runs real-mode code that writes 0x42 to port 0xf4.
func TestRunPIO(t *testing.T) {
	code := []byte{0xb0, 0x42, 0xe6, 0xf4, 0xf4} // mov al,0x42; out 0xf4,al; hlt
	v := newTestVM(t, code, false)
	io := v.runUntilIO(t)
	if !io.Out || io.Port != 0xf4 || io.Size != 1 || len(io.Data) != 1 || io.Data[0] != 0x42 {
		t.Errorf("IO() = %+v; want out of 0x42 to port 0xf4", io)
	}
	regs, err := v.cpu.Regs()
	if err != nil {
		t.Fatal(err)
	}
	if regs.RIP != 0x1004 || regs.RAX&0xff != 0x42 {
		t.Errorf("after OUT: rip=%#x al=%#x; want rip=0x1004 al=0x42", regs.RIP, regs.RAX&0xff)
	}
}

// TestRunMMIORead checks that an MMIO read exit's data is what the guest reads.
func TestRunMMIORead(t *testing.T) {
	// mov ax,0xf000; mov ds,ax; mov al,[0x10]; out 0xf4,al; hlt
	code := []byte{0xb8, 0x00, 0xf0, 0x8e, 0xd8, 0xa0, 0x10, 0x00, 0xe6, 0xf4, 0xf4}
	v := newTestVM(t, code, false)
	if err := v.cpu.Exec(); err != nil {
		t.Fatal(err)
	}
	if r := v.cpu.Run().ExitReason(); r != ExitMMIO {
		t.Fatalf("exit = %s; want MMIO", ExitName(r))
	}
	m := v.cpu.Run().MMIO()
	if m.Addr != 0xf0010 || m.Write || len(m.Data) != 1 {
		t.Fatalf("MMIO() = %+v; want 1-byte read of 0xf0010", m)
	}
	m.Data[0] = 0x5a
	io := v.runUntilIO(t)
	if io.Data[0] != 0x5a {
		t.Errorf("guest read %#x from MMIO; want 0x5a", io.Data[0])
	}
}

func TestVCPUState(t *testing.T) {
	v := newTestVM(t, []byte{0xf4}, true)
	c := v.cpu
	fpu, err := c.FPU()
	if err != nil {
		t.Fatal(err)
	}
	fpu.FCW = 0x37f
	if err := c.SetFPU(fpu); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.FPU(); got.FCW != 0x37f {
		t.Errorf("FPU() fcw=%#x; want 0x37f", got.FCW)
	}
	const msrTSCAux = 0xc0000103
	if err := c.SetMSRs([]MSREntry{{Index: msrTSCAux, Data: 7}}); err != nil {
		t.Fatal(err)
	}
	msrs := []MSREntry{{Index: msrTSCAux}}
	if err := c.MSRs(msrs); err != nil || msrs[0].Data != 7 {
		t.Errorf("MSRs(TSC_AUX) = %d, %v; want 7", msrs[0].Data, err)
	}
	cpuid, err := v.sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetCPUID2(cpuid); err != nil {
		t.Fatal(err)
	}
	lapic, err := c.LAPIC()
	if err != nil {
		t.Fatal(err)
	}
	if ver := binary.LittleEndian.Uint32(lapic.Regs[0x30:]) & 0xff; ver != 0x14 && ver != 0x15 {
		t.Errorf("LAPIC version register = %#x; want 0x14 or 0x15", ver)
	}
	binary.LittleEndian.PutUint32(lapic.Regs[0x80:], 0x20) // TPR
	if err := c.SetLAPIC(lapic); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.LAPIC(); binary.LittleEndian.Uint32(got.Regs[0x80:]) != 0x20 {
		t.Errorf("LAPIC TPR = %#x; want 0x20", binary.LittleEndian.Uint32(got.Regs[0x80:]))
	}
	if s, err := c.MPState(); err != nil || s != MPStateRunnable {
		t.Errorf("MPState() = %d, %v; want runnable", s, err)
	}
	if err := c.SetMPState(MPStateHalted); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.MPState(); s != MPStateHalted {
		t.Errorf("MPState() after set = %d; want halted", s)
	}
	ev, err := c.Events()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetEvents(ev); err != nil {
		t.Fatal(err)
	}
}

// TestIOEventFD checks that a registered port write is absorbed by the
// kernel (the eventfd counts it) and the next OUT exits as usual.
func TestIOEventFD(t *testing.T) {
	// mov al,1; out 0x80,al; out 0x80,al; mov al,9; out 0xf4,al; hlt
	code := []byte{0xb0, 0x01, 0xe6, 0x80, 0xe6, 0x80, 0xb0, 0x09, 0xe6, 0xf4, 0xf4}
	v := newTestVM(t, code, false)
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := v.vm.IOEventFD(IOEventFD{Addr: 0x80, Len: 1, FD: efd, PIO: true}); err != nil {
		t.Fatal(err)
	}
	io := v.runUntilIO(t)
	if io.Port != 0xf4 || io.Data[0] != 9 {
		t.Fatalf("first exit = %+v; want OUT 9 to 0xf4 (port 0x80 absorbed)", io)
	}
	var buf [8]byte
	if _, err := unix.Read(efd, buf[:]); err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(buf[:]); n != 2 {
		t.Errorf("eventfd count = %d; want 2", n)
	}
	if err := v.vm.IOEventFD(IOEventFD{Addr: 0x80, Len: 1, FD: efd, PIO: true, Deassign: true}); err != nil {
		t.Errorf("deassign: %v", err)
	}
}

func TestIRQs(t *testing.T) {
	v := newTestVM(t, []byte{0xf4}, true)
	if err := v.vm.IRQLine(4, true); err != nil {
		t.Error(err)
	}
	if err := v.vm.IRQLine(4, false); err != nil {
		t.Error(err)
	}
	routes := []RoutingEntry{IRQChipRoute(4, IRQChipIOAPIC, 4), MSIRoute(24, 0xfee00000, 0x31)}
	for i := uint32(0); i < 16; i++ {
		if i != 2 && i != 4 {
			routes = append(routes, IRQChipRoute(i, IRQChipPICMaster+i/8, i%8))
		}
	}
	if err := v.vm.SetGSIRouting(routes); err != nil {
		t.Fatal(err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := v.vm.IRQFD(efd, 24); err != nil {
		t.Fatal(err)
	}
	if err := v.vm.IRQFDDeassign(efd, 24); err != nil {
		t.Error(err)
	}
	if _, err := v.vm.SignalMSI(MSI{AddressLo: 0xfee00000, Data: 0x31}); err != nil {
		t.Error(err)
	}
}

// TestImmediateExit checks the stop mechanism: KVM_RUN returns EINTR.
func TestImmediateExit(t *testing.T) {
	v := newTestVM(t, []byte{0xeb, 0xfe}, false) // jmp .
	v.cpu.Run().SetImmediateExit(true)
	if err := v.cpu.Exec(); !errors.Is(err, unix.EINTR) {
		t.Errorf("Exec() with immediate_exit = %v; want EINTR", err)
	}
}
