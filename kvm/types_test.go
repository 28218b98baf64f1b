package kvm

import (
	"testing"
	"unsafe"
)

// Sizes from <linux/kvm.h> on x86-64; a wrong size makes the ioctl
// number wrong and the kernel refuses it, or worse, reads past the struct.
func TestStructSizes(t *testing.T) {
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"kvm_regs", unsafe.Sizeof(Regs{}), 144},
		{"kvm_segment", unsafe.Sizeof(Segment{}), 24},
		{"kvm_dtable", unsafe.Sizeof(DTable{}), 16},
		{"kvm_sregs", unsafe.Sizeof(Sregs{}), 312},
		{"kvm_fpu", unsafe.Sizeof(FPU{}), 416},
		{"kvm_msr_entry", unsafe.Sizeof(MSREntry{}), 16},
		{"kvm_cpuid_entry2", unsafe.Sizeof(CPUIDEntry{}), 40},
		{"kvm_lapic_state", unsafe.Sizeof(LAPICState{}), 1024},
		{"kvm_vcpu_events", unsafe.Sizeof(VCPUEvents{}), 64},
		{"kvm_xcrs", unsafe.Sizeof(XCRs{}), 392},
		{"kvm_userspace_memory_region", unsafe.Sizeof(UserMemoryRegion{}), 32},
		{"kvm_irq_level", unsafe.Sizeof(irqLevel{}), 8},
		{"kvm_pit_config", unsafe.Sizeof(pitConfig{}), 64},
		{"kvm_irqfd", unsafe.Sizeof(irqfd{}), 32},
		{"kvm_ioeventfd", unsafe.Sizeof(ioeventfd{}), 64},
		{"kvm_msi", unsafe.Sizeof(MSI{}), 32},
		{"kvm_irq_routing_entry", unsafe.Sizeof(RoutingEntry{}), 48},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("sizeof(%s) = %d; want %d", tt.name, tt.got, tt.want)
		}
	}
}

// Request numbers checked against values printed by a C program that
// includes <linux/kvm.h>.
func TestRequestNumbers(t *testing.T) {
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"KVM_CREATE_VM", reqCreateVM, 0xae01},
		{"KVM_RUN", reqRun, 0xae80},
		{"KVM_GET_SUPPORTED_CPUID", reqGetSupportedCPUID, 0xc008ae05},
		{"KVM_SET_USER_MEMORY_REGION", reqSetUserMemoryRegion, 0x4020ae46},
		{"KVM_GET_REGS", reqGetRegs, 0x8090ae81},
		{"KVM_SET_SREGS", reqSetSregs, 0x4138ae84},
		{"KVM_IRQFD", reqIRQFD, 0x4020ae76},
		{"KVM_IOEVENTFD", reqIOEventFD, 0x4040ae79},
		{"KVM_SET_GSI_ROUTING", reqSetGSIRouting, 0x4008ae6a},
		{"KVM_SIGNAL_MSI", reqSignalMSI, 0x4020aea5},
		{"KVM_CREATE_PIT2", reqCreatePIT2, 0x4040ae77},
		{"KVM_GET_VCPU_EVENTS", reqGetVCPUEvents, 0x8040ae9f},
		{"KVM_GET_LAPIC", reqGetLAPIC, 0x8400ae8e},
		{"KVM_SET_CPUID2", reqSetCPUID2, 0x4008ae90},
		{"KVM_GET_MSRS", reqGetMSRs, 0xc008ae88},
		{"KVM_GET_FPU", reqGetFPU, 0x81a0ae8c},
		{"KVM_SET_IDENTITY_MAP_ADDR", reqSetIdentityMapAddr, 0x4008ae48},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x; want %#x", tt.name, tt.got, tt.want)
		}
	}
}
