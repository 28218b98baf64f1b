package boot

import (
	"testing"

	"vmm/kvm"
)

// decode reverses descriptor for the fields a descriptor holds.
func decode(d uint64) kvm.Segment {
	s := kvm.Segment{
		Base:    d>>16&0xFFFFFF | (d>>56&0xFF)<<24,
		Limit:   uint32(d&0xFFFF | (d>>48&0xF)<<16),
		Type:    uint8(d >> 40 & 0xF),
		S:       uint8(d >> 44 & 1),
		DPL:     uint8(d >> 45 & 3),
		Present: uint8(d >> 47 & 1),
		AVL:     uint8(d >> 52 & 1),
		L:       uint8(d >> 53 & 1),
		DB:      uint8(d >> 54 & 1),
		G:       uint8(d >> 55 & 1),
	}
	if s.G != 0 {
		s.Limit = s.Limit<<12 | 0xFFF
	}
	return s
}

func TestDescriptor(t *testing.T) {
	for _, c := range []struct {
		name string
		seg  kvm.Segment
		want uint64
	}{
		{"code64", codeSegment(true), 0x00AF9B000000FFFF},
		{"code32", codeSegment(false), 0x00CF9B000000FFFF},
		{"data", dataSegment(), 0x00CF93000000FFFF},
		{"tss", tssSegment(), 0x00008B0005800067},
	} {
		if got := descriptor(c.seg); got != c.want {
			t.Errorf("descriptor(%s) = %#016x; want %#016x", c.name, got, c.want)
		}
	}
}

func TestApply(t *testing.T) {
	for _, c := range []struct {
		name   string
		kernel []byte
		kind   Kind
	}{
		{"bzImage", makeBzImage(defaultBz()), BzImage64},
		{"PVH", makeELF(defaultPVH()), PVH32},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := lowMem(testMemSize)
			e, err := Load(mem, mem.ram, c.kernel, nil, "x")
			if err != nil {
				t.Fatalf("Load = %v", err)
			}
			long := c.kind == BzImage64
			regs := kvm.Regs{RAX: 1, RBX: 2, RFLAGS: 0x202}
			sregs := kvm.Sregs{APICBase: 0xFEE00900, CR8: 3, CR0: 0x60000010}
			e.Apply(&regs, &sregs)

			want := kvm.Regs{RIP: e.EntryPoint, RFLAGS: 2, RSP: StackTop}
			if long {
				want.RSI = BootParamsAddr
			} else {
				want.RBX = StartInfoAddr
			}
			if regs != want {
				t.Errorf("Apply regs = %+v; want %+v", regs, want)
			}
			for _, r := range []struct {
				name      string
				got, want uint64
			}{
				{"CR0", sregs.CR0, map[bool]uint64{true: 0x80000011, false: 0x11}[long]},
				{"CR3", sregs.CR3, map[bool]uint64{true: PML4Addr, false: 0}[long]},
				{"CR4", sregs.CR4, map[bool]uint64{true: 0x20, false: 0}[long]},
				{"EFER", sregs.EFER, map[bool]uint64{true: 0x500, false: 0}[long]},
				{"APICBase", sregs.APICBase, 0xFEE00900},
				{"CR8", sregs.CR8, 3},
				{"GDT.Base", sregs.GDT.Base, GDTAddr},
				{"GDT.Limit", uint64(sregs.GDT.Limit), gdtEntries*8 - 1},
				{"CS.Selector", uint64(sregs.CS.Selector), 0x10},
				{"CS.L", uint64(sregs.CS.L), map[bool]uint64{true: 1, false: 0}[long]},
				{"CS.DB", uint64(sregs.CS.DB), map[bool]uint64{true: 0, false: 1}[long]},
				{"CS.Type", uint64(sregs.CS.Type), 0xb},
				{"DS.Selector", uint64(sregs.DS.Selector), 0x18},
				{"SS.Selector", uint64(sregs.SS.Selector), 0x18},
				{"TR.Type", uint64(sregs.TR.Type), 0xb},
				{"TR.S", uint64(sregs.TR.S), 0},
			} {
				if r.got != r.want {
					t.Errorf("Apply sregs.%s = %#x; want %#x", r.name, r.got, r.want)
				}
			}

			// The in-memory GDT describes exactly the loaded segments.
			for _, s := range []struct {
				name string
				seg  kvm.Segment
			}{{"CS", sregs.CS}, {"DS", sregs.DS}, {"ES", sregs.ES}, {"FS", sregs.FS}, {"GS", sregs.GS}, {"SS", sregs.SS}, {"TR", sregs.TR}} {
				d := mem.u64(GDTAddr + uint64(s.seg.Selector))
				got := decode(d)
				w := s.seg
				w.Selector = 0
				if got != w {
					t.Errorf("GDT[%#x] for %s = %+v; want %+v", s.seg.Selector, s.name, got, w)
				}
			}
			if got := mem.u64(GDTAddr); got != 0 {
				t.Errorf("GDT[0] = %#x; want 0", got)
			}
			if got := mem.u64(GDTAddr + BootTSS + 8); got != 0 {
				t.Errorf("GDT[TSS high half] = %#x; want 0", got)
			}
		})
	}
}

func TestPageTables(t *testing.T) {
	mem := lowMem(testMemSize)
	if _, err := Load(mem, mem.ram, makeBzImage(defaultBz()), nil, ""); err != nil {
		t.Fatalf("Load = %v", err)
	}
	if got, want := mem.u64(PML4Addr), uint64(PDPTAddr|3); got != want {
		t.Errorf("PML4[0] = %#x; want %#x", got, want)
	}
	for i := uint64(1); i < 512; i++ {
		if got := mem.u64(PML4Addr + 8*i); got != 0 {
			t.Errorf("PML4[%d] = %#x; want 0", i, got)
		}
	}
	for i := uint64(0); i < 512; i++ {
		want := uint64(0)
		if i < 4 {
			want = (PDAddr + i*0x1000) | 3
		}
		if got := mem.u64(PDPTAddr + 8*i); got != want {
			t.Errorf("PDPT[%d] = %#x; want %#x", i, got, want)
		}
	}
	// Every 2 MiB page of the first 4 GiB maps to itself.
	for i := uint64(0); i < 4*512; i++ {
		if got, want := mem.u64(PDAddr+8*i), i<<21|0x83; got != want {
			t.Fatalf("PD entry for %#x = %#x; want %#x", i<<21, got, want)
		}
	}
}
