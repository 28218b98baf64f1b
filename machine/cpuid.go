package machine

import (
	"math/bits"

	"vmm/kvm"
)

// buildCPUID returns the CPUID table for vCPU id of ncpus, starting
// from what KVM supports and making the fix-ups QEMU's `-cpu host` makes:
// APIC ids and topology (one socket, ncpus cores, one thread each), the
// hypervisor bit, and the caller's feature changes.
func buildCPUID(supported []kvm.CPUIDEntry, id, ncpus int, changes []FeatureChange) []kvm.CPUIDEntry {
	out := make([]kvm.CPUIDEntry, len(supported))
	copy(out, supported)
	coreBits := uint32(bits.Len(uint(ncpus - 1)))
	for i := range out {
		e := &out[i]
		switch e.Function {
		case 1:
			e.EBX = e.EBX&0x0000ffff | uint32(id)<<24 | uint32(ncpus)<<16
			e.ECX |= 1 << 31 // hypervisor
			if ncpus > 1 {
				e.EDX |= 1 << 28 // HTT: the logical count above is valid
			}
		case 4:
			// Cache leaves: cores per package in EAX[31:26], and each
			// cache serves one thread (EAX[25:14] = 0).
			if e.EAX&0x1f != 0 {
				e.EAX = e.EAX&0x03ffffff&^(0xfff<<14) | uint32(ncpus-1)<<26
			}
		case 0xb, 0x1f:
			e.EDX = uint32(id)
			switch e.Index {
			case 0: // SMT level: one thread per core
				e.EAX, e.EBX, e.ECX = 0, 1, 1<<8
			case 1: // core level
				e.EAX, e.EBX, e.ECX = coreBits, uint32(ncpus), 1|2<<8
			default:
				e.EAX, e.EBX, e.ECX = 0, 0, e.Index
			}
		case 0x8000_0008:
			if e.ECX&0xff != 0 { // AMD: number of threads - 1
				e.ECX = e.ECX&^0xf0ff | uint32(ncpus-1) | coreBits<<12
			}
		}
	}
	for _, c := range changes {
		for i := range out {
			e := &out[i]
			if e.Function != c.bit.leaf || (e.Flags&kvm.CPUIDFlagSignificantIndex != 0 && e.Index != c.bit.subleaf) {
				continue
			}
			r := [...]*uint32{&e.EAX, &e.EBX, &e.ECX, &e.EDX}[c.bit.reg]
			if c.On {
				*r |= 1 << c.bit.bit
			} else {
				*r &^= 1 << c.bit.bit
			}
		}
	}
	return out
}
