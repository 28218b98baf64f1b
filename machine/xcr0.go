package machine

import (
	"fmt"

	"vmm/kvm"
)

// offeredXCR0 returns the XSAVE features CPUID leaf 0xD.0 offers the
// guest (EDX:EAX), or 0 where the table offers no XSAVE at all.
func offeredXCR0(cpuid []kvm.CPUIDEntry) uint64 {
	xsave := false
	var mask uint64
	for _, e := range cpuid {
		switch {
		case e.Function == 1:
			xsave = e.ECX&(1<<26) != 0
		case e.Function == 0xd && e.Index == 0:
			mask = uint64(e.EDX)<<32 | uint64(e.EAX)
		}
	}
	if !xsave {
		return 0
	}
	return mask
}

// setXCR0 starts the vCPU with XCR0 holding every feature CPUID offers,
// the value Linux writes itself during boot. KVM keeps CPUID 0xD.0 EBX
// (the XSAVE size for the enabled features) in step with the XCR0 it
// knows of; where a guest's XSETBV does not reach KVM (TCG's emulated
// SVM, our nested rig: QEMU's guests there show it too) EBX stayed at the
// legacy 576 bytes and every stock kernel warned "XSAVE consistency
// problem" at boot. Starting from the offered set makes KVM's XCR0, and
// so EBX, agree with the guest's from the first instruction; a guest
// that never sets CR4.OSXSAVE never sees XCR0 at all.
func setXCR0(cpu *kvm.VCPU, cpuid []kvm.CPUIDEntry) error {
	mask := offeredXCR0(cpuid)
	if mask&1 == 0 { // no XSAVE, or a table without x87 state
		return nil
	}
	x := kvm.XCRs{NrXCRs: 1}
	x.XCRs[0] = kvm.XCR{XCR: kvm.XCR0, Value: mask}
	if err := cpu.SetXCRs(x); err != nil {
		return fmt.Errorf("XCR0 %#x: %w", mask, err)
	}
	return nil
}
