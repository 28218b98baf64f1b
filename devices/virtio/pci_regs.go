package virtio

// virtio-pci modern layout (virtio 1.2 §4.1). Everything lives in one
// 64-bit memory BAR, one 4 KiB page per structure as QEMU lays it out.
const (
	pciVendor        = 0x1af4
	pciDeviceBase    = 0x1040 // + device type
	pciSubsysID      = 0x1100 // what QEMU reports; modern drivers ignore it
	pciRevision      = 1      // modern-only device
	pciBAR           = 4
	pciCommonOff     = 0x0000
	pciCommonSize    = 0x38
	pciISROff        = 0x1000
	pciISRSize       = 4
	pciDeviceCfgOff  = 0x2000
	pciDeviceCfgSize = 0x1000
	pciNotifyOff     = 0x3000
	pciNotifyMult    = 4 // notify_off_multiplier: queue q kicks at pciNotifyOff + 4*q
	pciMSIXTableOff  = 0x4000
	pciMSIXPBAOff    = 0x6000
	// PCIBARSize is the size of the transport's BAR.
	PCIBARSize = 0x8000

	// Queues and MSI-X vectors the layout has room for.
	pciMaxQueues  = 0x1000 / pciNotifyMult
	pciMaxVectors = (pciMSIXPBAOff - pciMSIXTableOff) / 16
	pciNoVector   = 0xffff
)

// virtio_pci_cap cfg_type values.
const (
	pciCapCommon = 1
	pciCapNotify = 2
	pciCapISR    = 3
	pciCapDevice = 4
	pciCapPCICfg = 5
	pciCapVendor = 0x09 // PCI capability ID: vendor specific
)

// Common configuration structure offsets (virtio 1.2 §4.1.4.3).
const (
	commonDFSelect      = 0x00
	commonDF            = 0x04
	commonGFSelect      = 0x08
	commonGF            = 0x0c
	commonMSIX          = 0x10
	commonNumQ          = 0x12
	commonStatus        = 0x14
	commonCfgGeneration = 0x15
	commonQSelect       = 0x16
	commonQSize         = 0x18
	commonQMSIX         = 0x1a
	commonQEnable       = 0x1c
	commonQNOff         = 0x1e
	commonQDescLo       = 0x20
	commonQDescHi       = 0x24
	commonQAvailLo      = 0x28
	commonQAvailHi      = 0x2c
	commonQUsedLo       = 0x30
	commonQUsedHi       = 0x34
)
