package kvm

// Request numbers from <linux/kvm.h>.
var (
	reqGetAPIVersion       = io(0x00)
	reqCreateVM            = io(0x01)
	reqCheckExtension      = io(0x03)
	reqGetVCPUMmapSize     = io(0x04)
	reqGetSupportedCPUID   = iowr(0x05, 8)
	reqCreateVCPU          = io(0x41)
	reqSetUserMemoryRegion = iow(0x46, sizeOf[UserMemoryRegion]())
	reqSetTSSAddr          = io(0x47)
	reqSetIdentityMapAddr  = iow(0x48, 8)
	reqCreateIRQChip       = io(0x60)
	reqIRQLine             = iow(0x61, sizeOf[irqLevel]())
	reqSetGSIRouting       = iow(0x6a, 8)
	reqIRQFD               = iow(0x76, sizeOf[irqfd]())
	reqCreatePIT2          = iow(0x77, sizeOf[pitConfig]())
	reqIOEventFD           = iow(0x79, sizeOf[ioeventfd]())
	reqSignalMSI           = iow(0xa5, sizeOf[MSI]())

	reqGetRegs       = ior(0x81, sizeOf[Regs]())
	reqSetRegs       = iow(0x82, sizeOf[Regs]())
	reqGetSregs      = ior(0x83, sizeOf[Sregs]())
	reqSetSregs      = iow(0x84, sizeOf[Sregs]())
	reqGetMSRs       = iowr(0x88, 8)
	reqSetMSRs       = iow(0x89, 8)
	reqGetFPU        = ior(0x8c, sizeOf[FPU]())
	reqSetFPU        = iow(0x8d, sizeOf[FPU]())
	reqGetLAPIC      = ior(0x8e, sizeOf[LAPICState]())
	reqSetLAPIC      = iow(0x8f, sizeOf[LAPICState]())
	reqSetCPUID2     = iow(0x90, 8)
	reqGetMPState    = ior(0x98, 4)
	reqSetMPState    = iow(0x99, 4)
	reqGetVCPUEvents = ior(0x9f, sizeOf[VCPUEvents]())
	reqSetVCPUEvents = iow(0xa0, sizeOf[VCPUEvents]())
	reqGetXCRs       = ior(0xa6, sizeOf[XCRs]())
	reqSetXCRs       = iow(0xa7, sizeOf[XCRs]())
)

// reqRun is a constant so ioctl can recognise it without a lookup.
const reqRun = 0xAE<<8 | 0x80

// Capabilities (KVM_CAP_*) this project asks about.
const (
	CapIRQChip        = 0
	CapUserMemory     = 3
	CapSetTSSAddr     = 4
	CapExtCPUID       = 7
	CapNrVCPUs        = 9
	CapNrMemSlots     = 10
	CapPIT2           = 33
	CapIRQRouting     = 25
	CapIRQFD          = 32
	CapIOEventFD      = 36
	CapSetIdentityMap = 37
	CapMaxVCPUs       = 66
	CapSignalMSI      = 77
	CapImmediateExit  = 136
	CapXCRs           = 56
)
