package boot

import (
	"bytes"
	"testing"
)

func TestLoadPVH(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*elfOpts)
	}{
		{"ELF64 PT_NOTE", func(*elfOpts) {}},
		{"ELF32", func(o *elfOpts) { o.class32 = true }},
		{"note in SHT_NOTE section", func(o *elfOpts) { o.noteInSection = true }},
		{"4-byte desc", func(o *elfOpts) {
			o.note = makeNote("Xen", xenElfnotePhys32Entry, []byte{0x40, 0, 0x10, 0})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := defaultPVH()
			c.edit(&o)
			mem := lowMem(testMemSize)
			initrd := bytes.Repeat([]byte{0xA5}, 5000)
			cmdline := "console=hvc0"
			e, err := Load(mem, mem.ram, makeELF(o), initrd, cmdline)
			if err != nil {
				t.Fatalf("Load(PVH) = %v", err)
			}
			wantInitrd := uint64(testMemSize-0x2000) &^ 0xfff
			for _, f := range []struct {
				name      string
				got, want uint64
			}{
				{"Kind", uint64(e.Kind), uint64(PVH32)},
				{"EntryPoint", e.EntryPoint, 0x100040},
				{"StartInfo", e.StartInfo, StartInfoAddr},
				{"Cmdline", e.Cmdline, CmdlineAddr},
				{"Initrd", e.Initrd, wantInitrd},
				{"InitrdSize", e.InitrdSize, 5000},
				{"KernelStart", e.KernelStart, 0x100000},
				{"KernelEnd", e.KernelEnd, 0x205000},
			} {
				if f.got != f.want {
					t.Errorf("Load(PVH).%s = %#x; want %#x", f.name, f.got, f.want)
				}
			}

			si := uint64(StartInfoAddr)
			for _, f := range []struct {
				name string
				off  uint64
				size int
				want uint64
			}{
				{"magic", 0, 4, 0x336ec578},
				{"version", 4, 4, 1},
				{"flags", 8, 4, 0},
				{"nr_modules", 12, 4, 1},
				{"modlist_paddr", 16, 8, ModlistAddr},
				{"cmdline_paddr", 24, 8, CmdlineAddr},
				{"rsdp_paddr", 32, 8, 0},
				{"memmap_paddr", 40, 8, StartInfoAddr + 56},
				{"memmap_entries", 48, 4, 3},
				{"reserved", 52, 4, 0},
				{"memmap[0].addr", 56, 8, 0},
				{"memmap[0].size", 64, 8, 0x9FC00},
				{"memmap[0].type", 72, 4, E820RAM},
				{"memmap[1].addr", 80, 8, 0x9FC00},
				{"memmap[1].size", 88, 8, 0x60400},
				{"memmap[1].type", 96, 4, E820Reserved},
				{"memmap[2].addr", 104, 8, 0x100000},
				{"memmap[2].size", 112, 8, testMemSize - 0x100000},
				{"memmap[2].type", 120, 4, E820RAM},
				{"memmap[2].reserved", 124, 4, 0},
				{"modlist[0].paddr", ModlistAddr - StartInfoAddr, 8, wantInitrd},
				{"modlist[0].size", ModlistAddr - StartInfoAddr + 8, 8, 5000},
				{"modlist[0].cmdline_paddr", ModlistAddr - StartInfoAddr + 16, 8, 0},
				{"modlist[0].reserved", ModlistAddr - StartInfoAddr + 24, 8, 0},
			} {
				var got uint64
				switch f.size {
				case 4:
					got = mem.u32(si + f.off)
				case 8:
					got = mem.u64(si + f.off)
				}
				if got != f.want {
					t.Errorf("start_info.%s (+%#x) = %#x; want %#x", f.name, f.off, got, f.want)
				}
			}

			if got := mem.bytes(0x100000, 0x3000); !bytes.Equal(got, kernelPattern(0x3000)) {
				t.Errorf("segment 0 at 0x100000 differs from the file")
			}
			if got := mem.bytes(0x200000, 0x1000); !bytes.Equal(got, kernelPattern(0x1000)) {
				t.Errorf("segment 1 at 0x200000 differs from the file")
			}
			if got := mem.bytes(0x201000, 0x4000); !bytes.Equal(got, make([]byte, 0x4000)) {
				t.Errorf("segment 1's bss [0x201000, 0x205000) is not zero")
			}
			if got := mem.bytes(wantInitrd, 5000); !bytes.Equal(got, initrd) {
				t.Errorf("initrd at %#x differs from the initrd", wantInitrd)
			}
			if got := mem.bytes(CmdlineAddr, uint64(len(cmdline)+1)); string(got) != cmdline+"\x00" {
				t.Errorf("cmdline at %#x = %q; want %q", CmdlineAddr, got, cmdline+"\x00")
			}
			if got := mem.bytes(0x8000, 0x1000); !bytes.Equal(got, make([]byte, 0x1000)) {
				t.Errorf("Load wrote into [0x8000, 0x9000)")
			}
		})
	}
}

func TestLoadPVHNoInitrd(t *testing.T) {
	mem := lowMem(testMemSize)
	e, err := Load(mem, mem.ram, makeELF(defaultPVH()), nil, "")
	if err != nil {
		t.Fatalf("Load(PVH, no initrd) = %v", err)
	}
	if e.Initrd != 0 || e.InitrdSize != 0 {
		t.Errorf("Load(PVH, no initrd) initrd = %#x+%#x; want 0+0", e.Initrd, e.InitrdSize)
	}
	if got := mem.u32(StartInfoAddr + 12); got != 0 {
		t.Errorf("start_info.nr_modules = %d; want 0", got)
	}
	if got := mem.u64(StartInfoAddr + 16); got != 0 {
		t.Errorf("start_info.modlist_paddr = %#x; want 0", got)
	}
}

// The initrd goes above the kernel's highest byte even when RAM above 4 GiB
// exists: it must stay in low RAM.
func TestLoadPVHHighRAM(t *testing.T) {
	mem := newTestMem(Range{0, 32 << 20}, Range{1 << 32, 1 << 20})
	e, err := Load(mem, mem.ram, makeELF(defaultPVH()), make([]byte, 0x1000), "")
	if err != nil {
		t.Fatalf("Load(PVH, high RAM) = %v", err)
	}
	if want := uint64(32<<20 - 0x1000); e.Initrd != want {
		t.Errorf("Load(PVH, high RAM).Initrd = %#x; want %#x", e.Initrd, want)
	}
	if got := mem.u32(StartInfoAddr + 48); got != 4 {
		t.Errorf("start_info.memmap_entries = %d; want 4", got)
	}
	if got, want := mem.u64(StartInfoAddr+56+3*24), uint64(1<<32); got != want {
		t.Errorf("memmap[3].addr = %#x; want %#x", got, want)
	}
}
