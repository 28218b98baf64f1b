package kvm

import "encoding/binary"

// LAPIC register offsets in the APIC page (Intel SDM vol. 3, table 11-1),
// as KVM_GET_LAPIC lays them out.
const (
	lapicTPR   = 0x80
	lapicISR   = 0x100
	lapicIRR   = 0x200
	lapicLVTT  = 0x320
	lapicTMICT = 0x380
	lapicTMCCT = 0x390
)

// Reg returns the 32-bit register at offset off of the APIC page.
func (l *LAPICState) Reg(off int) uint32 {
	return binary.LittleEndian.Uint32(l.Regs[off:])
}

// TPR is the task priority register.
func (l *LAPICState) TPR() uint32 { return l.Reg(lapicTPR) }

// LVTTimer is the timer's local vector table entry (vector, mask bit
// 16, mode bits 17-18: one-shot, periodic, TSC-deadline).
func (l *LAPICState) LVTTimer() uint32 { return l.Reg(lapicLVTT) }

// TimerCounts are the timer's initial and current counts.
func (l *LAPICState) TimerCounts() (initial, current uint32) {
	return l.Reg(lapicTMICT), l.Reg(lapicTMCCT)
}

// Pending and InService list the vectors set in IRR (accepted, not yet
// delivered) and ISR (delivered, not yet EOId).
func (l *LAPICState) Pending() []uint8   { return l.vectors(lapicIRR) }
func (l *LAPICState) InService() []uint8 { return l.vectors(lapicISR) }

// vectors reads one of the 256-bit registers: eight 32-bit words 16
// bytes apart.
func (l *LAPICState) vectors(base int) []uint8 {
	var out []uint8
	for w := range 8 {
		bits := l.Reg(base + 16*w)
		for b := range 32 {
			if bits&(1<<b) != 0 {
				out = append(out, uint8(32*w+b))
			}
		}
	}
	return out
}
