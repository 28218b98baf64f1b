package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// The Debian kernel tests need tests/kernels/fetch-debian.sh BUILD_DIR to
// have run; `make test` does that. They load the real kernel files and
// cross-check the result against the files, read independently.

const debianMemSize = 256 << 20

func debianFile(t *testing.T, name string) []byte {
	t.Helper()
	dir := os.Getenv("VMM_DEBIAN_KERNEL_DIR")
	if dir == "" {
		dir = filepath.Join("..", "build", "debian")
	}
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		t.Skipf("%s is absent: run tests/kernels/fetch-debian.sh ../build (or set VMM_DEBIAN_KERNEL_DIR)", p)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var debianInitrd = bytes.Repeat([]byte("07070100fake-initrd"), 4096)

const debianCmdline = "console=ttyS0 earlyprintk=serial nokaslr panic=-1"

func TestDebianKernelBzImage(t *testing.T) {
	k := debianFile(t, "bzImage")
	mem := lowMem(debianMemSize)
	e, err := Load(mem, mem.ram, k, debianInitrd, debianCmdline)
	if err != nil {
		t.Fatalf("Load(Debian bzImage) = %v", err)
	}
	t.Logf("Debian bzImage: protocol %d.%02d, %v", e.Protocol>>8, e.Protocol&0xff, e)

	le := binary.LittleEndian
	sects := int(k[0x1f1])
	if sects == 0 {
		sects = 4
	}
	pm := k[(sects+1)*512:]
	initSize := uint64(le.Uint32(k[0x260:]))
	pref := le.Uint64(k[0x258:])
	if e.Kind != BzImage64 || e.Protocol < 0x20c || e.EntryPoint != 0x100200 {
		t.Errorf("Load(Debian bzImage) = %v protocol %#x entry %#x; want bzImage64 >= 0x20c at 0x100200", e.Kind, e.Protocol, e.EntryPoint)
	}
	if e.KernelEnd < pref+initSize {
		t.Errorf("Load(Debian bzImage).KernelEnd = %#x; want >= pref_address+init_size = %#x", e.KernelEnd, pref+initSize)
	}
	if !bytes.Equal(mem.bytes(0x100000, uint64(len(pm))), pm) {
		t.Errorf("protected-mode kernel at 0x100000 differs from the file")
	}
	if e.Initrd < e.KernelEnd || e.Initrd%pageSize != 0 || e.Initrd+e.InitrdSize > debianMemSize ||
		debianMemSize-(e.Initrd+e.InitrdSize) >= pageSize {
		t.Errorf("Load(Debian bzImage).Initrd = %#x; want page-aligned, as high as possible, above %#x", e.Initrd, e.KernelEnd)
	}
	if !bytes.Equal(mem.bytes(e.Initrd, e.InitrdSize), debianInitrd) {
		t.Errorf("initrd at %#x differs", e.Initrd)
	}

	bp := uint64(BootParamsAddr)
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"header", mem.u32(bp + 0x202), 0x53726448},
		{"version", mem.u16(bp + 0x206), uint64(le.Uint16(k[0x206:]))},
		{"setup_sects", mem.u8(bp + 0x1f1), uint64(k[0x1f1])},
		{"xloadflags", mem.u16(bp + 0x236), uint64(le.Uint16(k[0x236:]))},
		{"kernel_alignment", mem.u32(bp + 0x230), uint64(le.Uint32(k[0x230:]))},
		{"init_size", mem.u32(bp + 0x260), initSize},
		{"type_of_loader", mem.u8(bp + 0x210), 0xff},
		{"loadflags", mem.u8(bp + 0x211), uint64(k[0x211]) | canUseHeap},
		{"cmd_line_ptr", mem.u32(bp + 0x228), CmdlineAddr},
		{"ramdisk_image", mem.u32(bp + 0x218), e.Initrd},
		{"ramdisk_size", mem.u32(bp + 0x21c), uint64(len(debianInitrd))},
		{"heap_end_ptr", mem.u16(bp + 0x224), 0xde00},
		{"e820_entries", mem.u8(bp + 0x1e8), 3},
		{"e820[2].size", mem.u64(bp + 0x2d0 + 2*20 + 8), debianMemSize - 0x100000},
	} {
		if f.got != f.want {
			t.Errorf("boot_params.%s = %#x; want %#x", f.name, f.got, f.want)
		}
	}
	if got := mem.bytes(CmdlineAddr, uint64(len(debianCmdline)+1)); string(got) != debianCmdline+"\x00" {
		t.Errorf("cmdline = %q; want %q", got, debianCmdline)
	}
	if xlf := le.Uint16(k[0x236:]); xlf&xlfKernel64 == 0 {
		t.Errorf("Debian bzImage xloadflags %#x lacks XLF_KERNEL_64", xlf)
	}
}

func TestDebianKernelPVH(t *testing.T) {
	k := debianFile(t, "vmlinux")
	mem := lowMem(debianMemSize)
	e, err := Load(mem, mem.ram, k, debianInitrd, debianCmdline)
	if err != nil {
		t.Fatalf("Load(Debian vmlinux) = %v", err)
	}
	t.Logf("Debian vmlinux: %v", e)

	// Read the file again with debug/elf: the PVH note and the segments.
	f, err := elf.NewFile(bytes.NewReader(k))
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	var noteEntry uint64
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		if d, ok := findNote(b, p.Align, "Xen", xenElfnotePhys32Entry); ok && len(d) >= 4 {
			noteEntry = uint64(binary.LittleEndian.Uint32(d))
		}
	}
	if noteEntry == 0 {
		t.Fatalf("Debian vmlinux has no XEN_ELFNOTE_PHYS32_ENTRY note")
	}
	if e.Kind != PVH32 || e.EntryPoint != noteEntry {
		t.Errorf("Load(Debian vmlinux) = %v entry %#x; want PVH32 entry %#x", e.Kind, e.EntryPoint, noteEntry)
	}
	t.Logf("XEN_ELFNOTE_PHYS32_ENTRY = %#x", noteEntry)

	var end uint64
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		end = max(end, p.Paddr+p.Memsz)
		want := make([]byte, p.Filesz)
		if _, err := p.ReadAt(want, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mem.bytes(p.Paddr, p.Filesz), want) {
			t.Errorf("segment %d at %#x differs from the file", i, p.Paddr)
		}
		if bss := mem.bytes(p.Paddr+p.Filesz, p.Memsz-p.Filesz); !bytes.Equal(bss, make([]byte, len(bss))) {
			t.Errorf("segment %d bss is not zero", i)
		}
	}
	if e.KernelEnd != end {
		t.Errorf("Load(Debian vmlinux).KernelEnd = %#x; want %#x", e.KernelEnd, end)
	}
	if e.Initrd < end || e.Initrd%pageSize != 0 {
		t.Errorf("Load(Debian vmlinux).Initrd = %#x; want page-aligned above %#x", e.Initrd, end)
	}
	si := uint64(StartInfoAddr)
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"magic", mem.u32(si), 0x336ec578},
		{"version", mem.u32(si + 4), 1},
		{"nr_modules", mem.u32(si + 12), 1},
		{"modlist_paddr", mem.u64(si + 16), ModlistAddr},
		{"cmdline_paddr", mem.u64(si + 24), CmdlineAddr},
		{"memmap_paddr", mem.u64(si + 40), si + 56},
		{"memmap_entries", mem.u32(si + 48), 3},
		{"modlist[0].paddr", mem.u64(ModlistAddr), e.Initrd},
		{"modlist[0].size", mem.u64(ModlistAddr + 8), uint64(len(debianInitrd))},
	} {
		if f.got != f.want {
			t.Errorf("start_info.%s = %#x; want %#x", f.name, f.got, f.want)
		}
	}
	if !bytes.Equal(mem.bytes(e.Initrd, e.InitrdSize), debianInitrd) {
		t.Errorf("initrd at %#x differs", e.Initrd)
	}
}
