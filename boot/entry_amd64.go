package boot

import "vmm/kvm"

// Control register and EFER bits.
const (
	CR0PE    = 1 << 0
	CR0ET    = 1 << 4
	CR0PG    = 1 << 31
	CR4PAE   = 1 << 5
	EFERLME  = 1 << 8
	EFERLMA  = 1 << 10
	rflagsR1 = 1 << 1 // the always-one bit; IF stays clear
)

// Apply sets the boot vCPU's entry state on top of its current registers:
// general registers are replaced, segments, descriptor tables, CR0/3/4 and
// EFER are set, and the rest of sregs (APIC base, CR8, LDT, interrupt
// bitmap) is left as it was.
func (e *Entry) Apply(regs *kvm.Regs, sregs *kvm.Sregs) {
	*regs = kvm.Regs{RIP: e.EntryPoint, RFLAGS: rflagsR1, RSP: StackTop}
	long := e.Kind == BzImage64
	if long {
		regs.RSI = e.BootParams
	} else {
		regs.RBX = e.StartInfo
	}

	sregs.CS = codeSegment(long)
	ds := dataSegment()
	sregs.DS, sregs.ES, sregs.FS, sregs.GS, sregs.SS = ds, ds, ds, ds, ds
	sregs.TR = tssSegment()
	sregs.GDT = kvm.DTable{Base: GDTAddr, Limit: gdtEntries*8 - 1}
	sregs.IDT = kvm.DTable{} // no handlers yet: a fault before the kernel sets its own is a shutdown
	sregs.CR2 = 0
	if long {
		sregs.CR0 = CR0PE | CR0ET | CR0PG
		sregs.CR3 = PML4Addr
		sregs.CR4 = CR4PAE
		sregs.EFER = EFERLME | EFERLMA
	} else {
		sregs.CR0 = CR0PE | CR0ET
		sregs.CR3 = 0
		sregs.CR4 = 0
		sregs.EFER = 0
	}
}
