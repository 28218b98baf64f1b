package machine

import (
	"testing"

	"vmm/kvm"
	"vmm/kvm/kvmtest"
)

func TestOfferedXCR0(t *testing.T) {
	for _, c := range []struct {
		name  string
		cpuid []kvm.CPUIDEntry
		want  uint64
	}{
		{"x87 SSE AVX PKRU", []kvm.CPUIDEntry{{Function: 1, ECX: 1 << 26}, {Function: 0xd, Index: 0, EAX: 0x207}, {Function: 0xd, Index: 1, EAX: 5}}, 0x207},
		{"high half", []kvm.CPUIDEntry{{Function: 1, ECX: 1 << 26}, {Function: 0xd, EAX: 0xe7, EDX: 1}}, 1<<32 | 0xe7},
		{"no XSAVE in leaf 1", []kvm.CPUIDEntry{{Function: 1}, {Function: 0xd, EAX: 0x7}}, 0},
		{"no leaf 0xd", []kvm.CPUIDEntry{{Function: 1, ECX: 1 << 26}}, 0},
	} {
		if got := offeredXCR0(c.cpuid); got != c.want {
			t.Errorf("%s: offeredXCR0 = %#x; want %#x", c.name, got, c.want)
		}
	}
}

// TestSetXCR0: on the real /dev/kvm a vCPU starts with XCR0 holding what
// CPUID 0xD.0 offers (what Linux enables), so KVM's XSAVE size in
// CPUID 0xD.0 EBX matches the guest's features even where the guest's
// XSETBV never reaches KVM (nested TCG).
func TestSetXCR0(t *testing.T) {
	vm := kvmtest.New(t, 1<<20, true)
	supported, err := vm.Sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	want := offeredXCR0(supported)
	if want&1 == 0 {
		t.Skip("KVM offers no XSAVE on this host")
	}
	cpu, err := vm.VM.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	cpuid := buildCPUID(supported, 0, 1, nil)
	if err := cpu.SetCPUID2(cpuid); err != nil {
		t.Fatal(err)
	}
	if err := setXCR0(cpu, cpuid); err != nil {
		t.Fatalf("setXCR0: %v", err)
	}
	x, err := cpu.XCRs()
	if err != nil {
		t.Fatal(err)
	}
	if x.NrXCRs < 1 || x.XCRs[0].XCR != kvm.XCR0 || x.XCRs[0].Value != want {
		t.Errorf("XCRs = %d entries, XCR%d=%#x; want XCR0=%#x", x.NrXCRs, x.XCRs[0].XCR, x.XCRs[0].Value, want)
	}
}
