package boot

import (
	"cmp"
	"encoding/binary"
	"slices"
)

// struct hvm_start_info and friends (xen/include/public/arch-x86/hvm/start_info.h).
const (
	startInfoMagic   = 0x336ec578
	startInfoVersion = 1 // version 1 has the memory map fields
	startInfoSize    = 56
	memmapEntrySize  = 24
	modlistEntrySize = 32
	memmapAddr       = StartInfoAddr + startInfoSize
)

// Start-info field offsets.
const (
	siMagic         = 0
	siVersion       = 4
	siFlags         = 8
	siNrModules     = 12
	siModlistPaddr  = 16
	siCmdlinePaddr  = 24
	siRSDPPaddr     = 32
	siMemmapPaddr   = 40
	siMemmapEntries = 48
)

// region is a range of guest memory that a boot structure uses.
type region struct {
	start, end uint64
	what       string
}

// pvhRegions lists what vmm writes into guest memory for a PVH kernel:
// what loadPVH writes itself, and what the machine writes after it (the
// MP table with the BDA words pointing at the EBDA, the ACPI tables). No
// ELF segment may land on them.
//
// That is all that is refused below 1 MiB. GNU ld's default linker script
// puts the ELF and program headers in a PT_LOAD of their own just below
// the text (at 0xff000 for -Ttext 0x100000), or in the text's PT_LOAD,
// which then straddles 1 MiB (-z noseparate-code). Such a segment is
// loaded, not skipped: with noseparate-code it holds the code, and a
// program may read its own headers through __ehdr_start; QEMU's and Xen's
// PVH loaders load every PT_LOAD at its paddr too. The window
// [0x9FC00, 0x100000) is reserved in the memory map, so the guest's
// allocator leaves what lands there alone; only the ranges vmm fills are
// off limits. The MP table's place depends on the CPU count, which the
// loader does not know: both of its places are kept, at their largest.
func pvhRegions(cmdline string) []region {
	return []region{
		{ebdaPtrAddr, baseMemAddr + 2, "BIOS data area words"},
		{GDTAddr, TSSAddr + tssLimit + 1, "GDT and TSS"},
		{StartInfoAddr, ModlistAddr + modlistEntrySize, "start_info"},
		{CmdlineAddr, CmdlineAddr + uint64(len(cmdline)) + 1, "cmdline"},
		{EBDAAddr, EBDAAddr + ebdaSize, "MP table in the EBDA"},
		{ACPIAddr, ACPIAddr + ACPISize, "ACPI tables"},
		{BIOSAddr, BIOSAddr + MPTableSize(MaxCPUs), "MP table in the BIOS area"},
	}
}

func loadPVH(mem Memory, ram []Range, mm []E820Entry, data, initrd []byte, cmdline string) (*Entry, error) {
	f, err := parseELF(data)
	if err != nil {
		return nil, err
	}
	entry, err := f.pvhEntry()
	if err != nil {
		return nil, err
	}
	if len(mm) > (startInfoEnd-memmapAddr)/memmapEntrySize {
		return nil, errorf(ErrBadHeader, "boot: %d memory map entries do not fit after start_info", len(mm))
	}

	// Check every segment before writing any.
	var loads []elfProg
	start, end := ^uint64(0), uint64(0)
	entryLoaded := false
	regions := pvhRegions(cmdline)
	for i, p := range f.progs {
		if p.typ != ptLoad || p.memsz == 0 {
			continue
		}
		if p.filesz > p.memsz {
			return nil, errorf(ErrBadHeader, "kernel: ELF segment %d has filesz %#x > memsz %#x", i, p.filesz, p.memsz)
		}
		if _, err := sub(data, p.off, p.filesz, "segment"); err != nil {
			return nil, err
		}
		pend := p.paddr + p.memsz
		if pend < p.paddr {
			return nil, errorf(ErrOutsideRAM, "kernel: ELF segment %d [%#x, +%#x) wraps around", i, p.paddr, p.memsz)
		}
		if _, err := mem.Slice(p.paddr, p.memsz); err != nil {
			if low := lowRAMEnd(ram); p.paddr >= HighMemAddr && p.paddr < low && pend <= 1<<32 {
				// It starts in RAM and runs past its end: more -m would hold it.
				return nil, errorf(ErrMemoryTooSmall, "memory too small for the kernel (its ELF segment %d ends at %#x, RAM at %#x)", i, pend, low)
			}
			return nil, errorf(ErrOutsideRAM, "kernel: ELF segment %d [%#x, %#x) is outside RAM", i, p.paddr, pend)
		}
		for _, r := range regions {
			if p.paddr < r.end && r.start < pend {
				return nil, errorf(ErrOverlap, "kernel: ELF segment %d [%#x, %#x) overlaps the %s at [%#x, %#x)", i, p.paddr, pend, r.what, r.start, r.end)
			}
		}
		if entry >= p.paddr && entry < pend {
			entryLoaded = true
		}
		start, end = min(start, p.paddr), max(end, pend)
		loads = append(loads, p)
	}
	if len(loads) == 0 {
		return nil, errorf(ErrBadHeader, "kernel: ELF has no PT_LOAD segments")
	}
	// Overlapping segments are never legitimate, and refusing them bounds
	// the copying and clearing below by the size of RAM.
	sorted := slices.Clone(loads)
	slices.SortFunc(sorted, func(a, b elfProg) int { return cmp.Compare(a.paddr, b.paddr) })
	for i := 1; i < len(sorted); i++ {
		if p, q := sorted[i-1], sorted[i]; q.paddr < p.paddr+p.memsz {
			return nil, errorf(ErrOverlap, "kernel: ELF segments [%#x, %#x) and [%#x, %#x) overlap", p.paddr, p.paddr+p.memsz, q.paddr, q.paddr+q.memsz)
		}
	}
	if !entryLoaded {
		return nil, errorf(ErrBadHeader, "kernel: PVH entry %#x is not in a loaded segment", entry)
	}
	if len(initrd) > 0 && end >= 1<<32 {
		return nil, errorf(ErrInitrdTooLarge, "initrd (%d bytes) does not fit: the kernel ends at %#x, above 4 GiB", len(initrd), end)
	}
	initrdAt, err := placeInitrd(mem, ram, initrd, max(end, HighMemAddr), lowRAMEnd(ram))
	if err != nil {
		return nil, err
	}

	for _, p := range loads {
		b, _ := mem.Slice(p.paddr, p.memsz) // checked above
		n := copy(b, data[p.off:p.off+p.filesz])
		zeroSegment(mem, p.paddr+uint64(n), b[n:])
	}
	if err := writeCmdline(mem, cmdline); err != nil {
		return nil, err
	}
	if err := write(mem, StartInfoAddr, startInfo(mm, initrdAt, uint64(len(initrd))), "start_info"); err != nil {
		return nil, err
	}
	if err := writeGDT(mem, false); err != nil {
		return nil, err
	}
	return &Entry{
		Kind:        PVH32,
		EntryPoint:  entry,
		StartInfo:   StartInfoAddr,
		Cmdline:     CmdlineAddr,
		CmdlineLen:  uint64(len(cmdline)),
		Initrd:      initrdAt,
		InitrdSize:  uint64(len(initrd)),
		KernelStart: start,
		KernelEnd:   end,
		MemoryMap:   mm,
	}, nil
}

// startInfo builds hvm_start_info, the memory map after it, and (when
// there is an initrd) the module list at ModlistAddr, as one byte block
// starting at StartInfoAddr.
func startInfo(mm []E820Entry, initrd, initrdSize uint64) []byte {
	b := make([]byte, ModlistAddr+modlistEntrySize-StartInfoAddr)
	le := binary.LittleEndian
	le.PutUint32(b[siMagic:], startInfoMagic)
	le.PutUint32(b[siVersion:], startInfoVersion)
	le.PutUint64(b[siCmdlinePaddr:], CmdlineAddr)
	le.PutUint64(b[siMemmapPaddr:], memmapAddr)
	le.PutUint32(b[siMemmapEntries:], uint32(len(mm)))
	for i, e := range mm {
		m := b[startInfoSize+memmapEntrySize*i:]
		le.PutUint64(m, e.Addr)
		le.PutUint64(m[8:], e.Size)
		le.PutUint32(m[16:], e.Type)
	}
	if initrdSize > 0 {
		le.PutUint32(b[siNrModules:], 1)
		le.PutUint64(b[siModlistPaddr:], ModlistAddr)
		m := b[ModlistAddr-StartInfoAddr:]
		le.PutUint64(m, initrd)
		le.PutUint64(m[8:], initrdSize)
	}
	return b
}
