package virtio

import (
	"testing"

	"vmm/devices/pci"
	"vmm/kvm"
	"vmm/kvm/kvmtest"

	"vmm/devices/virtio/virtiotest"
)

// TestPCIRealKVM registers the virtio-pci transport's ioeventfds, irqfds
// and MSI routes with a real VM, runs real-mode code that kicks queue 1
// with a 16-bit store (as Linux's vp_notify does) and checks that the
// kick stayed in the kernel, then fires an MSI-X vector through its
// committed route.
func TestPCIRealKVM(t *testing.T) {
	tv := kvmtest.New(t, tMemSize, true)
	vm, ram := tv.VM, tv.Mem
	router := pci.NewGSIRouter(vm, pci.DefaultIRQChipRoutes(), pci.IOAPICPins)
	const bar = 0x20000 // above RAM, 32 KiB aligned, reachable as 2000:0000
	p, err := NewPCI(testDevice(), virtiotest.Mem(ram), vm, router, PCIOptions{BARAddr: bar})
	if err != nil {
		t.Fatalf("NewPCI(real VM) = %v; want nil", err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close() = %v; want nil", err)
		}
	}()
	r := &pciRig{t: t, p: p}
	r.cfgW(pci.RegCommand, 2, pci.CommandMemory|pci.CommandBusMaster)

	// mov ax,0x2000; mov ds,ax; mov [0x3004],ax; out 0xf4,al
	copy(ram[0x1000:], []byte{0xb8, 0x00, 0x20, 0x8e, 0xd8, 0xa3, 0x04, 0x30, 0xe6, 0xf4})
	cpu, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	sregs, err := cpu.Sregs()
	if err != nil {
		t.Fatal(err)
	}
	sregs.CS.Base, sregs.CS.Selector = 0, 0
	if err := cpu.SetSregs(sregs); err != nil {
		t.Fatal(err)
	}
	if err := cpu.SetRegs(kvm.Regs{RIP: 0x1000, RFLAGS: 2}); err != nil {
		t.Fatal(err)
	}
	if err := cpu.Exec(); err != nil {
		t.Fatal(err)
	}
	if reason := cpu.Run().ExitReason(); reason != kvm.ExitIO {
		t.Fatalf("exit = %s; want IO (the kick should stay in the kernel)", kvm.ExitName(reason))
	}
	for i, n := range []uint64{0, 1, 0} {
		if got := virtiotest.EventCount(t, p.notify[i]); got != n {
			t.Errorf("queue %d eventfd after the guest kicked queue 1 = %d; want %d", i, got, n)
		}
	}

	// MSI-X: program and unmask vector 0 for queue 0; the route is
	// committed with KVM_SET_GSI_ROUTING and the irqfd write injects it.
	r.enableMSIX(true)
	r.wr(commonQSelect, 2, 0)
	r.wr(commonQMSIX, 2, 0)
	r.wr(pciMSIXTableOff, 4, 0xfee00000)
	r.wr(pciMSIXTableOff+8, 4, 0x30)
	r.wr(pciMSIXTableOff+12, 4, 0)
	entries := router.Entries()
	if last := entries[len(entries)-1]; last != kvm.MSIRoute(p.MSIXGSI(0), 0xfee00000, 0x30) {
		t.Errorf("last committed route = %+v; want vector 0's MSI", last)
	}
	// Committing again must succeed with the real table.
	if err := router.SetMSIRoute(p.MSIXGSI(1), 0xfee00000, 0x31); err != nil {
		t.Errorf("SetMSIRoute() on a real VM = %v; want nil", err)
	}
	p.irq.Signal(0)
}
