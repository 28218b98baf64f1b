package boot

import (
	"errors"
	"strings"
	"testing"
)

func bzWith(edit func(*bzOpts)) []byte {
	o := defaultBz()
	edit(&o)
	return makeBzImage(o)
}

func elfWith(edit func(*elfOpts)) []byte {
	o := defaultPVH()
	edit(&o)
	return makeELF(o)
}

func TestLoadErrors(t *testing.T) {
	bz := makeBzImage(defaultBz())
	pvh := makeELF(defaultPVH())
	patch := func(b []byte, off int, v ...byte) []byte {
		b = append([]byte(nil), b...)
		copy(b[off:], v)
		return b
	}
	for _, c := range []struct {
		name    string
		memSize uint64
		kernel  []byte
		initrd  int
		cmdline string
		want    error
		msg     string
	}{
		{name: "empty file", kernel: nil, want: ErrNotKernel,
			msg: "kernel: not a bzImage or a PVH ELF (no HdrS signature, no ELF magic)"},
		{name: "wrong magic", kernel: patch(bz, 0x202, 'H', 'd', 'r', 's'), want: ErrNotKernel, msg: "no HdrS signature"},
		{name: "truncated before HdrS", kernel: bz[:0x204], want: ErrNotKernel},
		{name: "truncated setup header", kernel: bz[:0x240], want: ErrTruncated, msg: "setup header ends at 0x26c"},
		{name: "truncated before kernel", kernel: bz[:0x600], want: ErrTruncated, msg: "protected-mode kernel starts at 0x600"},
		{name: "old protocol", kernel: bzWith(func(o *bzOpts) { o.version = 0x20b }), want: ErrOldProtocol,
			msg: "boot protocol 2.11 is older than 2.12"},
		{name: "no 64-bit entry", kernel: bzWith(func(o *bzOpts) { o.xloadflags = 0x2 }), want: ErrNo64BitEntry,
			msg: "XLF_KERNEL_64 clear"},
		{name: "zImage", kernel: bzWith(func(o *bzOpts) { o.loadflags = 0 }), want: ErrBadHeader, msg: "LOADED_HIGH clear"},
		{name: "short header", kernel: bzWith(func(o *bzOpts) { o.jumpLen = 0x40 }), want: ErrBadHeader,
			msg: "setup header ends at 0x242"},
		{name: "bad kernel_alignment", kernel: bzWith(func(o *bzOpts) { o.align = 0x300000 }), want: ErrBadHeader,
			msg: "kernel_alignment 0x300000"},
		{name: "pref_address above 4G", kernel: bzWith(func(o *bzOpts) { o.pref = 1 << 40 }), want: ErrBadHeader,
			msg: "pref_address 0x10000000000"},
		{name: "initrd too large", kernel: bz, initrd: 48 << 20, want: ErrInitrdTooLarge,
			msg: "initrd (50331648 bytes) does not fit below 0x4000000"},
		{name: "initrd above initrd_addr_max", kernel: bzWith(func(o *bzOpts) { o.initrdMax = 0x17FFFFF }), initrd: 1,
			want: ErrInitrdTooLarge, msg: "does not fit below 0x1800000 above the kernel's end 0x1800000"},
		{name: "memory too small", memSize: 16 << 20, kernel: bz, want: ErrMemoryTooSmall,
			msg: "memory too small for the kernel (needs 25165824 bytes)"},
		{name: "cmdline longer than cmdline_size", kernel: bz, cmdline: strings.Repeat("a", 0x800), want: ErrCmdlineTooLong,
			msg: "cmdline (2048 bytes) is longer than the kernel's cmdline_size (2047)"},
		{name: "cmdline longer than its area", kernel: pvh, cmdline: strings.Repeat("a", CmdlineMax), want: ErrCmdlineTooLong,
			msg: "cmdline (65536 bytes) is longer than the 65535 bytes"},
		{name: "cmdline with NUL", kernel: pvh, cmdline: "a\x00b", msg: "cmdline contains a NUL byte"},

		{name: "ELF without note", kernel: elfWith(func(o *elfOpts) { o.note = makeNote("GNU", 3, []byte{1, 2, 3, 4}) }),
			want: ErrNoPVHNote, msg: "kernel: ELF has no XEN_ELFNOTE_PHYS32_ENTRY note (not a PVH kernel)"},
		{name: "ELF note from another owner", kernel: elfWith(func(o *elfOpts) { o.note = makeNote("Xe", 18, make([]byte, 8)) }),
			want: ErrNoPVHNote},
		{name: "ELF note truncated", kernel: elfWith(func(o *elfOpts) { o.note = pvhNote(0x100040)[:20] }), want: ErrNoPVHNote},
		{name: "ELF note desc size", kernel: elfWith(func(o *elfOpts) { o.note = makeNote("Xen", 18, []byte{1, 2, 3}) }),
			msg: "desc is 3 bytes, want 4 or 8"},
		{name: "ELF entry above 4G", kernel: elfWith(func(o *elfOpts) { o.note = pvhNote(1 << 32) }), msg: "PVH entry 0x100000000 is above 4 GiB"},
		{name: "ELF entry not loaded", kernel: elfWith(func(o *elfOpts) { o.note = pvhNote(0x300000) }), want: ErrBadHeader,
			msg: "PVH entry 0x300000 is not in a loaded segment"},
		{name: "ELF header truncated", kernel: pvh[:40], want: ErrTruncated, msg: "ELF header"},
		{name: "ELF program headers truncated", kernel: pvh[:100], want: ErrTruncated, msg: "ELF program headers"},
		{name: "ELF segment data truncated", kernel: pvh[:len(pvh)-1], want: ErrTruncated, msg: "ELF segment"},
		{name: "ELF segment offset hostile", kernel: elfWith(func(o *elfOpts) { o.segs[0].offset = -1 }), want: ErrTruncated},
		{name: "ELF segment outside RAM", kernel: elfWith(func(o *elfOpts) { o.segs[1].paddr = 0x8000000 }), want: ErrOutsideRAM,
			msg: "kernel: ELF segment 1 [0x8000000, 0x8005000) is outside RAM"},
		{name: "ELF bss past the end of RAM", kernel: elfWith(func(o *elfOpts) { o.segs[1].memsz = 0x8000000 }), want: ErrMemoryTooSmall,
			msg: "memory too small for the kernel (its ELF segment 1 ends at"},
		{name: "ELF segment wraps", kernel: elfWith(func(o *elfOpts) { o.segs[1].paddr = ^uint64(0) - 0x100 }), want: ErrOutsideRAM,
			msg: "wraps around"},
		{name: "ELF segment on start_info", kernel: elfWith(func(o *elfOpts) { o.segs[1].paddr = 0x6000 }), want: ErrOverlap,
			msg: "overlaps the start_info"},
		{name: "ELF segment on the EBDA", kernel: elfWith(func(o *elfOpts) { o.segs[1].paddr = 0x9F000 }), want: ErrOverlap,
			msg: "kernel: ELF segment 1 [0x9f000, 0xa4000) overlaps the MP table in the EBDA at [0x9fc00, 0xa0000)"},
		{name: "ELF segments overlap", kernel: elfWith(func(o *elfOpts) { o.segs[1].paddr = 0x102000 }), want: ErrOverlap,
			msg: "kernel: ELF segments [0x100000, 0x103000) and [0x102000, 0x107000) overlap"},
		{name: "ELF filesz > memsz", kernel: elfWith(func(o *elfOpts) { o.segs[1].memsz = 0x10 }), want: ErrBadHeader,
			msg: "filesz 0x1000 > memsz 0x10"},
		{name: "ELF without PT_LOAD", kernel: elfWith(func(o *elfOpts) { o.segs = nil }), want: ErrBadHeader, msg: "no PT_LOAD"},
		{name: "ELF big-endian", kernel: patch(pvh, 5, 2), msg: "not little-endian"},
		{name: "ELF class", kernel: patch(pvh, 4, 3), msg: "ELF class 3"},
		{name: "ELF machine", kernel: patch(pvh, 18, 183, 0), msg: "ELF machine 183 is not x86"},
		{name: "ELF initrd too large", kernel: pvh, initrd: 63 << 20, want: ErrInitrdTooLarge, msg: "initrd (66060288 bytes) does not fit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			size := c.memSize
			if size == 0 {
				size = testMemSize
			}
			mem := lowMem(size)
			e, err := Load(mem, mem.ram, c.kernel, make([]byte, c.initrd), c.cmdline)
			if err == nil {
				t.Fatalf("Load(%s) = %v, nil; want error", c.name, e)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("Load(%s) = %v; want errors.Is %v", c.name, err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Load(%s) = %q; want it to contain %q", c.name, err, c.msg)
			}
		})
	}
}

func TestLoadBadRAM(t *testing.T) {
	for _, c := range []struct {
		name string
		ram  []Range
		msg  string
	}{
		{"no RAM", nil, "no RAM ranges"},
		{"empty range", []Range{{0, 0}}, "bad RAM range"},
		{"wrapping range", []Range{{1 << 63, 1 << 63}}, "bad RAM range"},
		{"overlap", []Range{{0, 2 << 20}, {1 << 20, 2 << 20}}, "overlap"},
	} {
		_, err := Load(lowMem(1<<20), c.ram, makeBzImage(defaultBz()), nil, "")
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Load(ram %s) = %v; want error containing %q", c.name, err, c.msg)
		}
	}
}

func TestMemoryMap(t *testing.T) {
	m, err := MemoryMap([]Range{{1 << 32, 1 << 30}, {0, 0xC0000000}})
	if err != nil {
		t.Fatalf("MemoryMap = %v", err)
	}
	want := []E820Entry{
		{0, 0x9FC00, E820RAM},
		{0x9FC00, 0x60400, E820Reserved},
		{0x100000, 0xC0000000 - 0x100000, E820RAM},
		{1 << 32, 1 << 30, E820RAM},
	}
	if len(m) != len(want) {
		t.Fatalf("MemoryMap = %v; want %v", m, want)
	}
	for i := range want {
		if m[i] != want[i] {
			t.Errorf("MemoryMap()[%d] = %+v; want %+v", i, m[i], want[i])
		}
	}
}

func TestPlaceHigh(t *testing.T) {
	ram := []Range{{0, 0x10000000}, {1 << 32, 1 << 30}}
	for _, c := range []struct {
		size, floor, limit uint64
		want               uint64
		ok                 bool
	}{
		{0x1000, 0, 1 << 32, 0x10000000 - 0x1000, true},
		{0x1001, 0, 1 << 32, 0x10000000 - 0x2000, true},
		{0x1000, 0, 0x5000800, 0x5000800 - 0x1800, true},
		{0x1000, 0x0FFFF001, 1 << 32, 0, false},
		{0x20000000, 0, 1 << 32, 0, false},
		{1 << 40, 0, 1 << 32, 0, false},
	} {
		got, ok := placeHigh(ram, c.size, c.floor, c.limit)
		if got != c.want || ok != c.ok {
			t.Errorf("placeHigh(%#x, %#x, %#x) = %#x, %v; want %#x, %v", c.size, c.floor, c.limit, got, ok, c.want, c.ok)
		}
	}
}
