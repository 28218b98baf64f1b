package kvm

// The structures below mirror <linux/kvm.h> and <asm/kvm.h> for x86-64
// field by field; sizes are checked in types_test.go.

// Regs is struct kvm_regs.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment is struct kvm_segment.
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8
	Present  uint8
	DPL      uint8
	DB       uint8
	S        uint8
	L        uint8
	G        uint8
	AVL      uint8
	Unusable uint8
	_        uint8
}

// DTable is struct kvm_dtable (GDTR/IDTR).
type DTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// Sregs is struct kvm_sregs.
type Sregs struct {
	CS, DS, ES, FS, GS, SS Segment
	TR, LDT                Segment
	GDT, IDT               DTable
	CR0, CR2, CR3, CR4     uint64
	CR8                    uint64
	EFER                   uint64
	APICBase               uint64
	InterruptBitmap        [4]uint64
}

// FPU is struct kvm_fpu.
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	_          uint32
}

// MSREntry is struct kvm_msr_entry.
type MSREntry struct {
	Index uint32
	_     uint32
	Data  uint64
}

// CPUIDEntry is struct kvm_cpuid_entry2.
type CPUIDEntry struct {
	Function uint32
	Index    uint32
	Flags    uint32
	EAX      uint32
	EBX      uint32
	ECX      uint32
	EDX      uint32
	_        [3]uint32
}

// CPUID entry flags.
const (
	CPUIDFlagSignificantIndex = 1 << 0
)

// LAPICState is struct kvm_lapic_state: the 1 KiB register page.
type LAPICState struct {
	Regs [1024]byte
}

// VCPUEvents is struct kvm_vcpu_events.
type VCPUEvents struct {
	ExceptionInjected     uint8
	ExceptionNr           uint8
	ExceptionHasErrorCode uint8
	ExceptionPending      uint8
	ExceptionErrorCode    uint32
	InterruptInjected     uint8
	InterruptNr           uint8
	InterruptSoft         uint8
	InterruptShadow       uint8
	NMIInjected           uint8
	NMIPending            uint8
	NMIMasked             uint8
	_                     uint8
	SIPIVector            uint32
	Flags                 uint32
	SMISMM                uint8
	SMIPending            uint8
	SMIInsideNMI          uint8
	SMILatchedInit        uint8
	TripleFaultPending    uint8
	_                     [26]uint8
	ExceptionHasPayload   uint8
	ExceptionPayload      uint64
}

// UserMemoryRegion is struct kvm_userspace_memory_region.
type UserMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

type irqLevel struct {
	IRQ   uint32
	Level uint32
}

type pitConfig struct {
	Flags uint32
	_     [15]uint32
}

type irqfd struct {
	FD         uint32
	GSI        uint32
	Flags      uint32
	ResampleFD uint32
	_          [16]uint8
}

type ioeventfd struct {
	Datamatch uint64
	Addr      uint64
	Len       uint32
	FD        int32
	Flags     uint32
	_         [36]uint8
}

// MSI is struct kvm_msi.
type MSI struct {
	AddressLo uint32
	AddressHi uint32
	Data      uint32
	Flags     uint32
	DevID     uint32
	_         [12]uint8
}

// RoutingEntry is struct kvm_irq_routing_entry. U holds the union:
// for RoutingIRQChip {irqchip, pin}; for RoutingMSI {address_lo,
// address_hi, data, devid}.
type RoutingEntry struct {
	GSI   uint32
	Type  uint32
	Flags uint32
	_     uint32
	U     [8]uint32
}

// Routing entry types.
const (
	RoutingIRQChip = 1
	RoutingMSI     = 2
)

// In-kernel irqchip ids for RoutingIRQChip.
const (
	IRQChipPICMaster = 0
	IRQChipPICSlave  = 1
	IRQChipIOAPIC    = 2
)

// IRQChipRoute returns an entry routing gsi to pin of an in-kernel chip.
func IRQChipRoute(gsi, chip, pin uint32) RoutingEntry {
	return RoutingEntry{GSI: gsi, Type: RoutingIRQChip, U: [8]uint32{chip, pin}}
}

// MSIRoute returns an entry routing gsi to an MSI message.
func MSIRoute(gsi uint32, addr uint64, data uint32) RoutingEntry {
	return RoutingEntry{GSI: gsi, Type: RoutingMSI, U: [8]uint32{uint32(addr), uint32(addr >> 32), data}}
}

// MP states (KVM_MP_STATE_*).
const (
	MPStateRunnable      = 0
	MPStateUninitialized = 1
	MPStateInitReceived  = 2
	MPStateHalted        = 3
	MPStateSIPIReceived  = 4
)

// XCR is one extended control register (struct kvm_xcr).
type XCR struct {
	XCR      uint32
	Reserved uint32
	Value    uint64
}

// XCRs is struct kvm_xcrs: the vCPU's extended control registers.
type XCRs struct {
	NrXCRs  uint32
	Flags   uint32
	XCRs    [16]XCR
	Padding [16]uint64
}

// XCR0 is the index of XFEATURE_ENABLED_MASK, the only XCR today.
const XCR0 = 0
