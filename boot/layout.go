// Package boot loads Linux x86 kernels into guest memory and describes the
// vCPU state to start them: the 64-bit bzImage boot protocol
// (Documentation/arch/x86/boot.rst), the PVH ELF entry (Xen's
// hvm_start_info), the e820 map, identity page tables, a boot GDT, and the
// Intel MP table for secondary CPUs.
package boot

// Fixed guest-physical addresses of the boot structures. They all live in
// the first MiB and stay clear of [0x8000, 0x9000), which the test guest uses
// for its AP trampoline, and of a bzImage (loaded at 1 MiB). A PVH ELF's
// segments may lie anywhere in RAM that they leave these alone (pvhRegions).
const (
	GDTAddr        = 0x500   // boot GDT (gdtEntries descriptors)
	TSSAddr        = 0x580   // zeroed TSS that the boot TR describes
	StartInfoAddr  = 0x6000  // PVH struct hvm_start_info, memory map right after
	ModlistAddr    = 0x6800  // PVH struct hvm_modlist_entry[1] (the initrd)
	BootParamsAddr = 0x7000  // bzImage struct boot_params ("zero page"), 4 KiB
	PML4Addr       = 0x9000  // identity page tables: PML4, PDPT, 4 PDs
	PDPTAddr       = 0xA000  //
	PDAddr         = 0xB000  // 4 pages: 2 MiB pages covering the first 4 GiB
	StackTop       = 0x1FFF0 // initial RSP; [0x10000, 0x20000) is free
	CmdlineAddr    = 0x20000 // NUL-terminated kernel command line
	CmdlineMax     = 0x10000 // room at CmdlineAddr, including the NUL
	EBDAAddr       = 0x9FC00 // extended BIOS data area: the MP table goes here
	ACPIAddr       = 0xE0000 // ACPI tables, RSDP first (the machine puts them here)
	ACPISize       = 0x10000 // room at ACPIAddr
	BIOSAddr       = 0xF0000 // BIOS area: the MP table when it outgrows the EBDA
	HighMemAddr    = 0x100000
	KernelAddr     = HighMemAddr // bzImage protected-mode kernel load address

	// Reserved in the e820 map: EBDA, VGA hole and BIOS area.
	lowReservedStart = EBDAAddr
	lowReservedEnd   = HighMemAddr

	startInfoEnd = ModlistAddr // memory map entries must end here
	pageSize     = 0x1000
)
