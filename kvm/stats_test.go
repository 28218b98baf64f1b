package kvm

import "testing"

// TestVCPUStats reads a fresh vCPU's binary stats: the counters exist
// and a vCPU that never ran has no exits.
func TestVCPUStats(t *testing.T) {
	sys, err := Open()
	if err != nil {
		t.Skipf("no KVM: %v", err)
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	cpu, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer cpu.Close()
	s, err := cpu.Stats()
	if err != nil {
		t.Skipf("no binary stats on this host: %v", err)
	}
	exits, ok := s["exits"]
	if !ok {
		t.Fatalf("Stats() has no \"exits\" among %d counters", len(s))
	}
	if exits != 0 {
		t.Errorf("Stats()[exits] = %d before any KVM_RUN; want 0", exits)
	}
	if _, err := vm.Stats(); err != nil {
		t.Errorf("VM.Stats() = %v", err)
	}
}
