package machine

import (
	"testing"

	"vmm/kvm"
)

func findLeaf(t *testing.T, es []kvm.CPUIDEntry, fn, idx uint32) kvm.CPUIDEntry {
	t.Helper()
	for _, e := range es {
		if e.Function == fn && e.Index == idx {
			return e
		}
	}
	t.Fatalf("leaf %#x.%d missing", fn, idx)
	return kvm.CPUIDEntry{}
}

func TestBuildCPUIDTopology(t *testing.T) {
	supported := []kvm.CPUIDEntry{
		{Function: 1, EBX: 0xff00_0800, ECX: 1 << 21, EDX: 0},
		{Function: 0xb, Index: 0, Flags: kvm.CPUIDFlagSignificantIndex},
		{Function: 0xb, Index: 1, Flags: kvm.CPUIDFlagSignificantIndex},
		{Function: 0xb, Index: 2, Flags: kvm.CPUIDFlagSignificantIndex},
		{Function: 4, Index: 0, Flags: kvm.CPUIDFlagSignificantIndex, EAX: 0xfc00_4121},
		{Function: kvmFeatureLeaf, EAX: 1<<11 | 1<<13 | 1<<3},
	}
	tests := []struct {
		id, ncpus int
		wantEBX1  uint32
		wantHTT   bool
		coreShift uint32
	}{
		{0, 1, 0x0001_0800, false, 0},
		{1, 2, 0x0102_0800, true, 1},
		{3, 4, 0x0304_0800, true, 2},
		{4, 5, 0x0405_0800, true, 3},
	}
	for _, tt := range tests {
		out := buildCPUID(supported, tt.id, tt.ncpus, nil)
		l1 := findLeaf(t, out, 1, 0)
		if l1.EBX != tt.wantEBX1 {
			t.Errorf("cpu %d/%d: leaf 1 EBX = %#x; want %#x", tt.id, tt.ncpus, l1.EBX, tt.wantEBX1)
		}
		if got := l1.EDX&(1<<28) != 0; got != tt.wantHTT {
			t.Errorf("cpu %d/%d: HTT = %v; want %v", tt.id, tt.ncpus, got, tt.wantHTT)
		}
		if l1.ECX&(1<<31) == 0 || l1.ECX&(1<<21) == 0 {
			t.Errorf("cpu %d/%d: leaf 1 ECX = %#x; want hypervisor and x2apic bits", tt.id, tt.ncpus, l1.ECX)
		}
		core := findLeaf(t, out, 0xb, 1)
		if core.EAX != tt.coreShift || core.EBX != uint32(tt.ncpus) || core.ECX != 1|2<<8 || core.EDX != uint32(tt.id) {
			t.Errorf("cpu %d/%d: leaf 0xb.1 = %+v; want shift %d, %d cpus, core level, x2apic id %d", tt.id, tt.ncpus, core, tt.coreShift, tt.ncpus, tt.id)
		}
		smt := findLeaf(t, out, 0xb, 0)
		if smt.EAX != 0 || smt.EBX != 1 || smt.ECX != 1<<8 {
			t.Errorf("cpu %d/%d: leaf 0xb.0 = %+v; want one thread per core", tt.id, tt.ncpus, smt)
		}
		if end := findLeaf(t, out, 0xb, 2); end.ECX>>8&0xff != 0 {
			t.Errorf("leaf 0xb.2 level type = %d; want 0 (end of levels)", end.ECX>>8&0xff)
		}
		if l4 := findLeaf(t, out, 4, 0); l4.EAX>>26 != uint32(tt.ncpus-1) || l4.EAX>>14&0xfff != 0 || l4.EAX&0x3fff != 0x0121 {
			t.Errorf("cpu %d/%d: leaf 4 EAX = %#x; want cores-1 = %d, one thread per cache, cache type kept", tt.id, tt.ncpus, l4.EAX, tt.ncpus-1)
		}
	}
	if supported[0].EBX != 0xff00_0800 {
		t.Errorf("buildCPUID modified its input")
	}
}

func TestBuildCPUIDFeatures(t *testing.T) {
	supported := []kvm.CPUIDEntry{
		{Function: 1, ECX: 1 << 21},
		{Function: 7, Index: 0, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1 << 20},
		{Function: 7, Index: 1, Flags: kvm.CPUIDFlagSignificantIndex, EBX: 1 << 20},
		{Function: kvmFeatureLeaf, EAX: 1<<11 | 1<<13 | 1<<3},
	}
	changes, err := ParseCPU("host,kvm-pv-ipi=off,-kvm-pv-sched-yield,-x2apic,+rdrand,smap=off")
	if err != nil {
		t.Fatal(err)
	}
	out := buildCPUID(supported, 0, 1, changes)
	if kv := findLeaf(t, out, kvmFeatureLeaf, 0); kv.EAX != 1<<3 {
		t.Errorf("KVM leaf EAX = %#x; want only kvmclock2 (bit 3) left", kv.EAX)
	}
	if l1 := findLeaf(t, out, 1, 0); l1.ECX&(1<<21) != 0 || l1.ECX&(1<<30) == 0 {
		t.Errorf("leaf 1 ECX = %#x; want x2apic off, rdrand on", l1.ECX)
	}
	if l7 := findLeaf(t, out, 7, 0); l7.EBX&(1<<20) != 0 {
		t.Errorf("leaf 7.0 EBX = %#x; want smap off", l7.EBX)
	}
	if l71 := findLeaf(t, out, 7, 1); l71.EBX != 1<<20 {
		t.Errorf("leaf 7.1 EBX = %#x; subleaf 1 must be untouched", l71.EBX)
	}
}

func TestParseCPU(t *testing.T) {
	tests := []struct {
		in      string
		want    []FeatureChange
		wantErr string
	}{
		{in: "host"},
		{in: "max"},
		{in: "host,+sse4.2,sse4_1=off,kvm_pv_ipi=on", want: []FeatureChange{{Name: "sse4-2", On: true}, {Name: "sse4-1"}, {Name: "kvm-pv-ipi", On: true}}},
		{in: "qemu64", wantErr: `-cpu qemu64: unsupported CPU model "qemu64" (only host is supported)`},
		{in: "host,+bogus", wantErr: `-cpu: unknown CPU feature "bogus"`},
		{in: "host,x2apic=maybe", wantErr: `-cpu: feature "x2apic": value "maybe" is not on or off`},
	}
	for _, tt := range tests {
		got, err := ParseCPU(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseCPU(%q) error = %v; want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCPU(%q) = %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParseCPU(%q) = %d changes; want %d", tt.in, len(got), len(tt.want))
			continue
		}
		for i := range got {
			if got[i].Name != tt.want[i].Name || got[i].On != tt.want[i].On {
				t.Errorf("ParseCPU(%q)[%d] = %s=%v; want %s=%v", tt.in, i, got[i].Name, got[i].On, tt.want[i].Name, tt.want[i].On)
			}
		}
	}
}
