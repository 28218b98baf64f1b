package boot

import (
	"bytes"
	"testing"
)

const testMemSize = 64 << 20

func TestLoadBzImage(t *testing.T) {
	mem := lowMem(testMemSize)
	ram := mem.ram
	o := defaultBz()
	kernel := makeBzImage(o)
	initrd := bytes.Repeat([]byte("initrd!"), 1000) // 7000 bytes
	cmdline := "console=ttyS0 root=/dev/vda"
	e, err := Load(mem, ram, kernel, initrd, cmdline)
	if err != nil {
		t.Fatalf("Load(bzImage) = %v", err)
	}

	// The decompressor runs at pref_address (0x1000000) and needs init_size.
	wantEnd := uint64(0x1000000 + o.initSize)
	wantInitrd := uint64((testMemSize - len(initrd)) &^ 0xfff)
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"Kind", uint64(e.Kind), uint64(BzImage64)},
		{"EntryPoint", e.EntryPoint, 0x100200},
		{"Protocol", uint64(e.Protocol), 0x20f},
		{"BootParams", e.BootParams, BootParamsAddr},
		{"Cmdline", e.Cmdline, CmdlineAddr},
		{"CmdlineLen", e.CmdlineLen, uint64(len(cmdline))},
		{"Initrd", e.Initrd, wantInitrd},
		{"InitrdSize", e.InitrdSize, uint64(len(initrd))},
		{"KernelStart", e.KernelStart, 0x100000},
		{"KernelEnd", e.KernelEnd, wantEnd},
	} {
		if c.got != c.want {
			t.Errorf("Load(bzImage).%s = %#x; want %#x", c.name, c.got, c.want)
		}
	}

	bp := uint64(BootParamsAddr)
	for _, f := range []struct {
		name string
		off  uint64
		size int
		want uint64
	}{
		{"setup_sects", 0x1f1, 1, 2},
		{"boot_flag", 0x1fe, 2, 0xAA55},
		{"header", 0x202, 4, 0x53726448},
		{"version", 0x206, 2, 0x20f},
		{"type_of_loader", 0x210, 1, 0xff},
		{"loadflags", 0x211, 1, loadedHigh | canUseHeap},
		{"code32_start", 0x214, 4, 0x100000},
		{"ramdisk_image", 0x218, 4, wantInitrd},
		{"ramdisk_size", 0x21c, 4, uint64(len(initrd))},
		{"heap_end_ptr", 0x224, 2, 0xde00},
		{"cmd_line_ptr", 0x228, 4, CmdlineAddr},
		{"initrd_addr_max", 0x22c, 4, 0x7fffffff},
		{"kernel_alignment", 0x230, 4, 0x200000},
		{"relocatable_kernel", 0x234, 1, 1},
		{"xloadflags", 0x236, 2, 0x7f},
		{"cmdline_size", 0x238, 4, 0x7ff},
		{"pref_address", 0x258, 8, 0x1000000},
		{"init_size", 0x260, 4, uint64(o.initSize)},
		{"ext_ramdisk_image", 0x0c0, 4, 0},
		{"ext_ramdisk_size", 0x0c4, 4, 0},
		{"ext_cmd_line_ptr", 0x0c8, 4, 0},
		{"e820_entries", 0x1e8, 1, 3},
		{"e820[0].addr", 0x2d0, 8, 0},
		{"e820[0].size", 0x2d8, 8, 0x9FC00},
		{"e820[0].type", 0x2e0, 4, E820RAM},
		{"e820[1].addr", 0x2e4, 8, 0x9FC00},
		{"e820[1].size", 0x2ec, 8, 0x100000 - 0x9FC00},
		{"e820[1].type", 0x2f4, 4, E820Reserved},
		{"e820[2].addr", 0x2f8, 8, 0x100000},
		{"e820[2].size", 0x300, 8, testMemSize - 0x100000},
		{"e820[2].type", 0x308, 4, E820RAM},
		{"e820[3].addr", 0x30c, 8, 0},
		{"screen_info", 0x000, 8, 0},
		{"after header", 0x26c, 8, 0},
	} {
		var got uint64
		switch f.size {
		case 1:
			got = mem.u8(bp + f.off)
		case 2:
			got = mem.u16(bp + f.off)
		case 4:
			got = mem.u32(bp + f.off)
		case 8:
			got = mem.u64(bp + f.off)
		}
		if got != f.want {
			t.Errorf("boot_params.%s (%#x) = %#x; want %#x", f.name, f.off, got, f.want)
		}
	}

	if got := mem.bytes(CmdlineAddr, uint64(len(cmdline)+1)); string(got) != cmdline+"\x00" {
		t.Errorf("cmdline at %#x = %q; want %q", CmdlineAddr, got, cmdline+"\x00")
	}
	if got := mem.bytes(0x100000, uint64(o.kernelLen)); !bytes.Equal(got, kernelPattern(o.kernelLen)) {
		t.Errorf("kernel at 0x100000 differs from the protected-mode part of the file")
	}
	if got := mem.bytes(wantInitrd, uint64(len(initrd))); !bytes.Equal(got, initrd) {
		t.Errorf("initrd at %#x differs from the initrd", wantInitrd)
	}
	// Nothing in the test guest's AP trampoline page.
	if got := mem.bytes(0x8000, 0x1000); !bytes.Equal(got, make([]byte, 0x1000)) {
		t.Errorf("Load wrote into [0x8000, 0x9000)")
	}
}

func TestBzImagePlacement(t *testing.T) {
	for _, c := range []struct {
		name             string
		edit             func(*bzOpts)
		memSize          uint64
		initrdLen        int
		wantEnd, wantInt uint64
	}{
		{
			name:    "setup_sects 0 means 4",
			edit:    func(o *bzOpts) { o.setupSects = 0 },
			memSize: testMemSize, initrdLen: 100,
			wantEnd: 0x1800000, wantInt: testMemSize - 0x1000,
		},
		{
			name: "initrd_addr_max caps the initrd",
			edit: func(o *bzOpts) { o.initrdMax = 0x2000000 - 1 },
			// initrd must end at or below 0x2000000.
			memSize: testMemSize, initrdLen: 0x1800,
			wantEnd: 0x1800000, wantInt: 0x2000000 - 0x2000,
		},
		{
			name: "initrd_addr_max 0 means 0x37FFFFFF",
			edit: func(o *bzOpts) { o.initrdMax = 0 },
			// 1 GiB of RAM: the initrd ends at or below 0x38000000.
			memSize: 1 << 30, initrdLen: 0x1000,
			wantEnd: 0x1800000, wantInt: 0x38000000 - 0x1000,
		},
		{
			name:    "non-relocatable runs at pref_address",
			edit:    func(o *bzOpts) { o.reloc, o.align = 0, 0 },
			memSize: testMemSize, initrdLen: 0,
			wantEnd: 0x1800000,
		},
		{
			name:    "relocatable below pref runs aligned",
			edit:    func(o *bzOpts) { o.pref, o.align, o.initSize = 0x100000, 0x400000, 0x100000 },
			memSize: testMemSize, initrdLen: 0,
			wantEnd: 0x500000,
		},
		{
			name:    "image larger than init_size",
			edit:    func(o *bzOpts) { o.pref, o.align, o.initSize, o.kernelLen = 0x100000, 0x1000, 0x1000, 0x20000 },
			memSize: testMemSize, initrdLen: 0,
			wantEnd: 0x120000,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := defaultBz()
			c.edit(&o)
			mem := lowMem(c.memSize)
			e, err := Load(mem, mem.ram, makeBzImage(o), make([]byte, c.initrdLen), "")
			if err != nil {
				t.Fatalf("Load = %v", err)
			}
			if e.KernelEnd != c.wantEnd {
				t.Errorf("Load().KernelEnd = %#x; want %#x", e.KernelEnd, c.wantEnd)
			}
			if e.Initrd != c.wantInt {
				t.Errorf("Load().Initrd = %#x; want %#x", e.Initrd, c.wantInt)
			}
			if got := mem.u32(BootParamsAddr + 0x218); got != c.wantInt {
				t.Errorf("boot_params.ramdisk_image = %#x; want %#x", got, c.wantInt)
			}
		})
	}
}
