package machine

import (
	"encoding/binary"
	"fmt"

	"vmm/boot"
	"vmm/kvm"
)

// Control register bits (shared with the boot loader, which sets them)
// and page-table entry bits used to walk the guest's tables.
const (
	cr0PG   = boot.CR0PG
	cr4PAE  = boot.CR4PAE
	eferLMA = boot.EFERLMA
	ptePS   = 1 << 7
	pteP    = 1 << 0
)

// translate turns a guest linear address into a physical one by walking
// the guest's page tables, for diagnostics (instruction bytes at RIP).
func translate(mem *Memory, sregs *kvm.Sregs, linear uint64) (uint64, error) {
	if sregs.CR0&cr0PG == 0 {
		return linear & 0xffff_ffff, nil
	}
	read := func(addr uint64) (uint64, error) {
		b, err := mem.Slice(addr, 8)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b), nil
	}
	const addrMask = 0x000f_ffff_ffff_f000
	switch {
	case sregs.EFER&eferLMA != 0:
		table := sregs.CR3 & addrMask
		for level := 3; level >= 0; level-- {
			shift := 12 + 9*uint(level)
			e, err := read(table + (linear>>shift&0x1ff)*8)
			if err != nil {
				return 0, err
			}
			if e&pteP == 0 {
				return 0, fmt.Errorf("linear %#x not mapped (level %d)", linear, level+1)
			}
			if level > 0 && level < 3 && e&ptePS != 0 {
				return e&addrMask&^(1<<shift-1) | linear&(1<<shift-1), nil
			}
			table = e & addrMask
		}
		return table | linear&0xfff, nil
	case sregs.CR4&cr4PAE != 0:
		pdpte, err := read(sregs.CR3&0xffff_ffe0 + (linear>>30&3)*8)
		if err != nil || pdpte&pteP == 0 {
			return 0, fmt.Errorf("linear %#x not mapped (PDPTE)", linear)
		}
		pde, err := read(pdpte&addrMask + (linear>>21&0x1ff)*8)
		if err != nil || pde&pteP == 0 {
			return 0, fmt.Errorf("linear %#x not mapped (PDE)", linear)
		}
		if pde&ptePS != 0 {
			return pde&addrMask&^(1<<21-1) | linear&(1<<21-1), nil
		}
		pte, err := read(pde&addrMask + (linear>>12&0x1ff)*8)
		if err != nil || pte&pteP == 0 {
			return 0, fmt.Errorf("linear %#x not mapped (PTE)", linear)
		}
		return pte&addrMask | linear&0xfff, nil
	default:
		return 0, fmt.Errorf("32-bit non-PAE paging: not decoded")
	}
}

// instructionBytes returns up to 16 bytes at the vCPU's CS:RIP.
func instructionBytes(mem *Memory, regs *kvm.Regs, sregs *kvm.Sregs) ([]byte, error) {
	linear := sregs.CS.Base + regs.RIP
	if sregs.EFER&eferLMA != 0 && sregs.CS.L != 0 {
		linear = regs.RIP
	}
	pa, err := translate(mem, sregs, linear)
	if err != nil {
		return nil, err
	}
	n := min(16, 0x1000-pa&0xfff) // stay inside one page
	return mem.Slice(pa, n)
}
