package boot

import "encoding/binary"

// Offsets in a bzImage file and in struct boot_params, which begins with
// the same setup header at 0x1f1 (Documentation/arch/x86/boot.rst).
const (
	hdrStart          = 0x1f1 // struct setup_header
	offSetupSects     = 0x1f1
	offSysSize        = 0x1f4 // protected-mode kernel size in 16-byte paragraphs
	offJumpLen        = 0x201 // the short jump's displacement: header end = 0x202 + it
	hdrMagicOff       = 0x202
	offVersion        = 0x206
	offTypeOfLoader   = 0x210
	offLoadflags      = 0x211
	offRamdiskImage   = 0x218
	offRamdiskSize    = 0x21c
	offHeapEndPtr     = 0x224
	offCmdLinePtr     = 0x228
	offInitrdAddrMax  = 0x22c
	offKernelAlign    = 0x230
	offRelocatable    = 0x234
	offXLoadflags     = 0x236
	offCmdlineSize    = 0x238
	offPrefAddress    = 0x258
	offInitSize       = 0x260
	hdrMinEnd         = 0x264 // end of init_size: present in every >= 2.10 header
	hdrMaxEnd         = 0x290 // boot_params.edd_mbr_sig_buffer follows the header
	offExtRamdiskImg  = 0x0c0
	offExtRamdiskSize = 0x0c4
	offExtCmdLinePtr  = 0x0c8
	offE820Entries    = 0x1e8
	offE820Table      = 0x2d0
	bootParamsSize    = 0x1000

	hdrMagic = "HdrS"

	loadedHigh   = 1 << 0 // loadflags: protected-mode code at 0x100000
	canUseHeap   = 1 << 7 // loadflags: heap_end_ptr is valid
	xlfKernel64  = 1 << 0 // xloadflags: has the 64-bit entry at +0x200
	loaderType   = 0xff   // type_of_loader: "undefined" boot loader
	heapEndPtr   = 0xe000 - 0x200
	entry64Off   = 0x200 // startup_64 relative to the load address
	minProtocol  = 0x020c
	defInitrdMax = 0x37FFFFFF
)

// setupHeader is what the loader takes from a bzImage's setup header.
type setupHeader struct {
	version     uint16
	hdr         []byte // the raw header, [0x1f1, end)
	kernel      []byte // the protected-mode kernel
	loadflags   uint8
	initrdMax   uint64 // highest address the initrd may end at, exclusive
	align       uint64
	relocatable bool
	cmdlineSize uint64
	pref        uint64
	initSize    uint64
}

func le16(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
func le32(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func le64(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }

// parseSetupHeader validates a bzImage's header; data has the HdrS magic.
func parseSetupHeader(data []byte) (*setupHeader, error) {
	if len(data) < offVersion+2 {
		return nil, errorf(ErrTruncated, "kernel: bzImage is %d bytes, too short for a setup header", len(data))
	}
	h := &setupHeader{version: le16(data, offVersion)}
	if h.version < minProtocol {
		return nil, errorf(ErrOldProtocol, "kernel: boot protocol %d.%02d is older than 2.12 (no 64-bit entry)", h.version>>8, h.version&0xff)
	}
	end := 0x202 + int(data[offJumpLen])
	if end < hdrMinEnd {
		return nil, errorf(ErrBadHeader, "kernel: setup header ends at %#x, protocol %d.%02d needs %#x", end, h.version>>8, h.version&0xff, hdrMinEnd)
	}
	if len(data) < end {
		return nil, errorf(ErrTruncated, "kernel: bzImage is %d bytes, its setup header ends at %#x", len(data), end)
	}
	h.hdr = data[hdrStart:min(end, hdrMaxEnd)]
	if le16(data, offXLoadflags)&xlfKernel64 == 0 {
		return nil, errorf(ErrNo64BitEntry, "kernel: bzImage has no 64-bit entry point (XLF_KERNEL_64 clear in xloadflags)")
	}
	h.loadflags = data[offLoadflags]
	if h.loadflags&loadedHigh == 0 {
		return nil, errorf(ErrBadHeader, "kernel: zImage (LOADED_HIGH clear) is not supported")
	}
	sects := int(data[offSetupSects])
	if sects == 0 {
		sects = 4
	}
	pm := (sects + 1) * 512
	if len(data) <= pm {
		return nil, errorf(ErrTruncated, "kernel: bzImage is %d bytes, its protected-mode kernel starts at %#x", len(data), pm)
	}
	h.kernel = data[pm:]
	// syssize is the size of the protected-mode kernel, rounded up to 16
	// bytes (arch/x86/boot/tools/build.c); a signed kernel has more after
	// it. A file that holds less was cut short: refuse it rather than
	// start a kernel whose tail is missing.
	if sys := uint64(le32(data, offSysSize)); sys > (uint64(len(h.kernel))+15)/16 {
		return nil, errorf(ErrTruncated, "kernel: bzImage's syssize says its protected-mode kernel is %d bytes (%#x paragraphs); the file holds %d after the setup at %#x", sys*16, sys, len(h.kernel), pm)
	}
	h.initrdMax = uint64(le32(data, offInitrdAddrMax))
	if h.initrdMax == 0 {
		h.initrdMax = defInitrdMax
	}
	h.initrdMax++
	h.align = uint64(le32(data, offKernelAlign))
	h.relocatable = data[offRelocatable] != 0
	if h.relocatable && (h.align == 0 || h.align&(h.align-1) != 0 || h.align > 1<<30) {
		return nil, errorf(ErrBadHeader, "kernel: kernel_alignment %#x is not a power of two up to 1 GiB", h.align)
	}
	h.cmdlineSize = uint64(le32(data, offCmdlineSize))
	h.pref = le64(data, offPrefAddress)
	if h.pref >= 1<<32 {
		return nil, errorf(ErrBadHeader, "kernel: pref_address %#x is above 4 GiB", h.pref)
	}
	h.initSize = uint64(le32(data, offInitSize))
	return h, nil
}

// extent returns the memory the kernel needs: the image at KernelAddr and
// the init_size bytes from where it runs. Its decompressor (64-bit entry of
// arch/x86/boot/compressed/head_64.S) runs at the load address rounded up
// to kernel_alignment if relocatable, but never below pref_address
// (LOAD_PHYSICAL_ADDR), and needs init_size bytes from there.
func (h *setupHeader) extent() (start, end uint64) {
	run := uint64(KernelAddr)
	if h.relocatable {
		run = (run + h.align - 1) &^ (h.align - 1)
	}
	run = max(run, h.pref)
	return KernelAddr, max(KernelAddr+uint64(len(h.kernel)), run+h.initSize)
}

func loadBzImage(mem Memory, ram []Range, mm []E820Entry, data, initrd []byte, cmdline string) (*Entry, error) {
	h, err := parseSetupHeader(data)
	if err != nil {
		return nil, err
	}
	if uint64(len(cmdline)) > h.cmdlineSize {
		return nil, errorf(ErrCmdlineTooLong, "cmdline (%d bytes) is longer than the kernel's cmdline_size (%d)", len(cmdline), h.cmdlineSize)
	}
	if len(initrd) >= 1<<32 {
		return nil, errorf(ErrInitrdTooLarge, "initrd (%d bytes) does not fit in ramdisk_size", len(initrd))
	}
	start, end := h.extent()
	if _, err := mem.Slice(start, end-start); err != nil || end > lowRAMEnd(ram) {
		return nil, errorf(ErrMemoryTooSmall, "memory too small for the kernel (needs %d bytes)", end)
	}
	initrdAt, err := placeInitrd(mem, ram, initrd, end, min(h.initrdMax, lowRAMEnd(ram)))
	if err != nil {
		return nil, err
	}
	if err := write(mem, KernelAddr, h.kernel, "kernel"); err != nil {
		return nil, err
	}
	if err := writeCmdline(mem, cmdline); err != nil {
		return nil, err
	}
	bp := bootParams(h, mm, initrdAt, uint64(len(initrd)))
	if err := write(mem, BootParamsAddr, bp, "boot_params"); err != nil {
		return nil, err
	}
	if err := writePageTables(mem); err != nil {
		return nil, err
	}
	if err := writeGDT(mem, true); err != nil {
		return nil, err
	}
	return &Entry{
		Kind:        BzImage64,
		EntryPoint:  KernelAddr + entry64Off,
		Protocol:    h.version,
		BootParams:  BootParamsAddr,
		Cmdline:     CmdlineAddr,
		CmdlineLen:  uint64(len(cmdline)),
		Initrd:      initrdAt,
		InitrdSize:  uint64(len(initrd)),
		KernelStart: start,
		KernelEnd:   end,
		MemoryMap:   mm,
	}, nil
}

// bootParams builds the zero page: zeroed, with the file's setup header
// copied in and the loader's fields filled.
func bootParams(h *setupHeader, mm []E820Entry, initrd, initrdSize uint64) []byte {
	bp := make([]byte, bootParamsSize)
	copy(bp[hdrStart:], h.hdr)
	le := binary.LittleEndian
	bp[offTypeOfLoader] = loaderType
	bp[offLoadflags] = h.loadflags | canUseHeap
	le.PutUint16(bp[offHeapEndPtr:], heapEndPtr)
	le.PutUint32(bp[offCmdLinePtr:], CmdlineAddr)
	le.PutUint32(bp[offExtCmdLinePtr:], CmdlineAddr>>32)
	le.PutUint32(bp[offRamdiskImage:], uint32(initrd))
	le.PutUint32(bp[offRamdiskSize:], uint32(initrdSize))
	le.PutUint32(bp[offExtRamdiskImg:], uint32(initrd>>32))
	le.PutUint32(bp[offExtRamdiskSize:], uint32(initrdSize>>32))
	bp[offE820Entries] = uint8(len(mm))
	for i, e := range mm {
		b := bp[offE820Table+20*i:]
		le.PutUint64(b, e.Addr)
		le.PutUint64(b[8:], e.Size)
		le.PutUint32(b[16:], e.Type)
	}
	return bp
}
