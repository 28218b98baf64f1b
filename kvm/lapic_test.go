package kvm

import (
	"encoding/binary"
	"slices"
	"testing"
)

// TestLAPICDecode reads a real vCPU's LAPIC after setting its timer and
// two pending vectors through KVM_SET_LAPIC.
func TestLAPICDecode(t *testing.T) {
	v := newTestVM(t, []byte{0xf4}, true)
	l, err := v.cpu.LAPIC()
	if err != nil {
		t.Fatal(err)
	}
	put := func(off int, x uint32) { binary.LittleEndian.PutUint32(l.Regs[off:], x) }
	put(0xf0, 0x1ff)         // software enable, spurious vector 0xff
	put(lapicLVTT, 0xec)     // one-shot, unmasked, vector 0xec
	put(lapicTMICT, 0)       // not armed: KVM keeps TMCCT at 0
	put(lapicIRR+16*1, 1<<2) // vector 34
	put(lapicIRR+16*7, 1<<31)
	put(lapicTPR, 0x20)
	if err := v.cpu.SetLAPIC(l); err != nil {
		t.Fatal(err)
	}
	got, err := v.cpu.LAPIC()
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Pending(); !slices.Equal(p, []uint8{34, 255}) {
		t.Errorf("Pending() = %v; want [34 255]", p)
	}
	if s := got.InService(); len(s) != 0 {
		t.Errorf("InService() = %v; want none", s)
	}
	if lvt, tpr := got.LVTTimer(), got.TPR(); lvt != 0xec || tpr != 0x20 {
		t.Errorf("LVTTimer() = %#x, TPR() = %#x; want 0xec, 0x20", lvt, tpr)
	}
	if i, c := got.TimerCounts(); i != 0 || c != 0 {
		t.Errorf("TimerCounts() = %d, %d; want 0, 0", i, c)
	}
}
