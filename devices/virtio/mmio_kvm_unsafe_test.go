package virtio

import (
	"testing"

	"vmm/kvm"
	"vmm/kvm/kvmtest"

	"vmm/devices/virtio/virtiotest"
)

// TestMMIORealKVM registers the transport's ioeventfds and irqfd with a
// real VM, then runs real-mode guest code that kicks queue 1 and checks
// that the kick arrived on the eventfd without an exit to userspace.
func TestMMIORealKVM(t *testing.T) {
	tv := kvmtest.New(t, tMemSize, true)
	vm, ram := tv.VM, tv.Mem
	const base = 0x20000 // above RAM, reachable from real mode as 2000:0000
	m, err := NewMMIO(testDevice(), virtiotest.Mem(ram), vm, base, 5)
	if err != nil {
		t.Fatalf("NewMMIO(real VM) = %v; want nil", err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close() = %v; want nil", err)
		}
	}()

	// mov ax,0x2000; mov ds,ax; mov eax,1; mov [0x50],eax; out 0xf4,al
	// (not hlt: with an in-kernel irqchip KVM handles hlt itself)
	copy(ram[0x1000:], []byte{0xb8, 0x00, 0x20, 0x8e, 0xd8, 0x66, 0xb8, 0x01, 0, 0, 0, 0x66, 0xa3, 0x50, 0x00, 0xe6, 0xf4})
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
	if r := cpu.Run().ExitReason(); r != kvm.ExitIO {
		t.Fatalf("exit = %s; want IO (the kick should stay in the kernel)", kvm.ExitName(r))
	}
	for i, n := range []uint64{0, 1, 0} {
		if got := virtiotest.EventCount(t, m.notify[i]); got != n {
			t.Errorf("queue %d eventfd after the guest kicked queue 1 = %d; want %d", i, got, n)
		}
	}
	// The irqfd is bound to gsi 5: signalling must not fail.
	m.irq.Signal(0)
	if got := rd32(m, regInterruptStatus); got != isrUsedBuffer {
		t.Errorf("InterruptStatus = %#x; want 1", got)
	}
}
