package boot

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vmm/kvm"
	"vmm/kvm/kvmtest"
)

// TestKVMResetVector runs the stub where Linux's machine_real_restart
// sends the CPU (real mode, ljmpw $0xf000, $0xfff0): it must write 0xfe
// to port 0x64, then halt. Skipped where KVM does not run real-mode
// code (the PVM hosts); the nested rig's KVM does.
func TestKVMResetVector(t *testing.T) {
	const size = 2 << 20
	tv := kvmtest.New(t, size, false)
	mem := &testMem{ram: []Range{{0, size}}, bufs: [][]byte{tv.Mem}}
	if err := WriteResetVector(mem); err != nil {
		t.Fatal(err)
	}
	cpu, err := tv.VM.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	sregs, err := cpu.Sregs()
	if err != nil {
		t.Fatal(err)
	}
	if sregs.CR0&1 != 0 {
		t.Fatalf("new vCPU CR0 = %#x; want real mode", sregs.CR0)
	}
	sregs.CS.Selector, sregs.CS.Base = 0xf000, 0xf0000
	if err := cpu.SetSregs(sregs); err != nil {
		t.Fatal(err)
	}
	regs, err := cpu.Regs()
	if err != nil {
		t.Fatal(err)
	}
	regs.RIP, regs.RFLAGS = 0xfff0, 2
	if err := cpu.SetRegs(regs); err != nil {
		t.Fatal(err)
	}
	// Without the stub the vCPU runs through zeroed memory for ever:
	// kick it out (SIGURG interrupts KVM_RUN on this locked thread).
	tid := unix.Gettid()
	stop := time.AfterFunc(10*time.Second, func() {
		cpu.Run().SetImmediateExit(true)
		unix.Tgkill(unix.Getpid(), tid, unix.SIGURG)
	})
	defer stop.Stop()
	var outs []string
	for range 10 {
		if err := cpu.Exec(); errors.Is(err, unix.EINTR) {
			regs, _ := cpu.Regs()
			t.Fatalf("vCPU still running after 10 s (RIP %#x), no reset after %q", regs.RIP, outs)
		} else if err != nil {
			t.Fatalf("KVM_RUN: %v", err)
		}
		switch r := cpu.Run().ExitReason(); r {
		case kvm.ExitIO:
			io, err := cpu.Run().IO()
			if err != nil {
				t.Fatal(err)
			}
			if !io.Out || io.Port != 0x64 || io.Size != 1 || io.Data[0] != 0xfe {
				t.Fatalf("I/O exit %+v; want out 0xfe to port 0x64", io)
			}
			outs = append(outs, "out 0x64, 0xfe")
		case kvm.ExitHLT:
			if len(outs) != 1 {
				t.Fatalf("halted after %q; want one reset write first", outs)
			}
			return
		case kvm.ExitInternalError, kvm.ExitFailEntry:
			if len(outs) == 0 {
				t.Skipf("this KVM does not run the real-mode stub (exit %s)", kvm.ExitName(r))
			}
			t.Fatalf("KVM exit %s after %q", kvm.ExitName(r), outs)
		default:
			regs, _ := cpu.Regs()
			t.Fatalf("KVM exit %s at RIP %#x after %q", kvm.ExitName(r), regs.RIP, outs)
		}
	}
	t.Fatalf("no halt after %q", outs)
}
