package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vmm/boot/acpi"
)

// The GNU ld-linked PVH ELFs in testdata/gnuld (see gen.sh there): their
// first PT_LOAD holds the ELF and program headers at 0xff000, below the
// text at 1 MiB, alone (separate-code) or with the text (noseparate-code).
var gnuldELFs = []string{"separate-code.elf", "noseparate-code.elf"}

func gnuldELF(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gnuld", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoadPVHGNULd loads them: every PT_LOAD lands at its paddr with the
// file's bytes and a zeroed tail, and what the machine writes afterwards
// (the MP table in both of its places, the ACPI tables) leaves them intact.
func TestLoadPVHGNULd(t *testing.T) {
	for _, name := range gnuldELFs {
		t.Run(name, func(t *testing.T) {
			data := gnuldELF(t, name)
			f, err := elf.NewFile(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			mem := lowMem(testMemSize)
			for i := range mem.bufs[0] {
				mem.bufs[0][i] = 0xAA // .bss must come out zero, not stale
			}
			e, err := Load(mem, mem.ram, data, nil, "console=ttyS0")
			if err != nil {
				t.Fatalf("Load(%s) = %v; want nil", name, err)
			}
			if e.EntryPoint != 0x100000 || e.KernelStart != 0xff000 {
				t.Errorf("Load(%s) entry %#x kernel start %#x; want 0x100000, 0xff000", name, e.EntryPoint, e.KernelStart)
			}
			if got := mem.bytes(0xff000, 4); !bytes.Equal(got, elfMagic) {
				t.Errorf("guest memory at 0xff000 = % x; want the ELF magic", got)
			}

			check := func(when string) {
				for _, p := range f.Progs {
					if p.Type != elf.PT_LOAD {
						continue
					}
					want := make([]byte, p.Memsz)
					copy(want, data[p.Off:p.Off+p.Filesz])
					if got := mem.bytes(p.Paddr, p.Memsz); !bytes.Equal(got, want) {
						t.Errorf("%s: segment [%#x, +%#x) in guest memory differs from the file (zero-extended)", when, p.Paddr, p.Memsz)
					}
				}
			}
			check("after Load")
			for _, cpus := range []int{1, MaxCPUs} {
				if err := WriteMPTable(mem, MPTableAddr(cpus), cpus); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := acpi.Build(acpi.Config{Memory: mem, Base: ACPIAddr, Size: ACPISize, CPUs: 254,
				SleepControl: acpi.SleepRegister(acpi.DefaultSleepPort), SleepStatus: acpi.SleepRegister(acpi.DefaultSleepPort)}); err != nil {
				t.Fatal(err)
			}
			check("after the MP and ACPI tables")
		})
	}
}

// TestKVMGNULd runs them: the guest reads its own ELF header through
// __ehdr_start, then a .data and a .bss word.
func TestKVMGNULd(t *testing.T) {
	for _, name := range gnuldELFs {
		t.Run(name, func(t *testing.T) {
			got := runKVM(t, gnuldELF(t, name), nil)
			want := []uint32{binary.LittleEndian.Uint32(elfMagic), 0x12345678, 0}
			if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
				t.Errorf("%s wrote %#x to port 0x500; want %#x", name, got, want)
			}
		})
	}
}

// TestLoadPVHSegmentPlacement: below 1 MiB, a segment is refused exactly
// where it would meet something vmm writes, with the segment and both
// ranges named, and loaded anywhere else in RAM.
func TestLoadPVHSegmentPlacement(t *testing.T) {
	mpEnd := BIOSAddr + MPTableSize(MaxCPUs)
	for _, c := range []struct {
		name         string
		paddr, memsz uint64
		msg          string // "" if it must load
	}{
		{"BDA", 0x400, 0x100, "kernel: ELF segment 1 [0x400, 0x500) overlaps the BIOS data area words at [0x40e, 0x415)"},
		{"GDT", 0x500, 0x10, "kernel: ELF segment 1 [0x500, 0x510) overlaps the GDT and TSS at [0x500, 0x5e8)"},
		{"start_info", 0x5000, 0x1800, "overlaps the start_info at [0x6000, 0x6820)"},
		{"cmdline", 0x1f000, 0x1004, "overlaps the cmdline at [0x20000, 0x2000e)"},
		{"EBDA", 0x9fff0, 0x10, "kernel: ELF segment 1 [0x9fff0, 0xa0000) overlaps the MP table in the EBDA at [0x9fc00, 0xa0000)"},
		{"ACPI tables", 0xa0000, 0x40001, "kernel: ELF segment 1 [0xa0000, 0xe0001) overlaps the ACPI tables at [0xe0000, 0xf0000)"},
		{"BIOS-area MP table", 0xf1000, 0x1000, "kernel: ELF segment 1 [0xf1000, 0xf2000) overlaps the MP table in the BIOS area at [0xf0000, 0xf14b4)"},
		{"below the BDA", 0x0, 0x40e, ""},
		{"between TSS and start_info", 0x600, 0x5a00, ""},
		{"VGA hole and option ROMs", 0xa0000, 0x40000, ""},
		{"after the MP table up to 1 MiB", mpEnd, HighMemAddr - mpEnd, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := elfWith(func(o *elfOpts) {
				o.segs[1] = elfSeg{paddr: c.paddr, data: kernelPattern(int(min(c.memsz, 0x100))), memsz: c.memsz}
			})
			mem := lowMem(testMemSize)
			_, err := Load(mem, mem.ram, k, nil, "console=ttyS0")
			if c.msg == "" {
				if err != nil {
					t.Errorf("Load(segment [%#x, +%#x)) = %v; want nil", c.paddr, c.memsz, err)
				}
				return
			}
			if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Load(segment [%#x, +%#x)) = %v; want ErrOverlap containing %q", c.paddr, c.memsz, err, c.msg)
			}
		})
	}
}

// TestBzImageSysSize: a bzImage whose setup header's syssize says more
// than the file holds is refused; the rounding up to 16 bytes and a
// trailer after the kernel (a signature) are accepted.
func TestBzImageSysSize(t *testing.T) {
	o := defaultBz()
	o.kernelLen = 0x10008 // not a multiple of 16
	for _, c := range []struct {
		name    string
		syssize uint32
		trim    int // bytes cut off the end of the file
		msg     string
	}{
		{"exact, rounded up", 0x1001, 0, ""},
		{"trailer after the kernel", 0x1000, 0, ""},
		{"one paragraph more", 0x1002, 0, "kernel: bzImage's syssize says its protected-mode kernel is 65568 bytes (0x1002 paragraphs); the file holds 65544 after the setup at 0x600"},
		{"file cut short", 0x1001, 0x100, "the file holds 65288"},
		{"huge", 0xffffffff, 0, "(0xffffffff paragraphs)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := makeBzImage(o)
			binary.LittleEndian.PutUint32(k[offSysSize:], c.syssize)
			k = k[:len(k)-c.trim]
			mem := lowMem(testMemSize)
			_, err := Load(mem, mem.ram, k, nil, "")
			if c.msg == "" {
				if err != nil {
					t.Errorf("Load(syssize %#x, %d bytes) = %v; want nil", c.syssize, len(k), err)
				}
				return
			}
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Load(syssize %#x, %d bytes) = %v; want ErrTruncated containing %q", c.syssize, len(k), err, c.msg)
			}
		})
	}
}
