package acpi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeMem is guest RAM [0, len(m)).
type fakeMem []byte

func (m fakeMem) Slice(addr, n uint64) ([]byte, error) {
	if addr > uint64(len(m)) || n > uint64(len(m))-addr {
		return nil, fmt.Errorf("[%#x, +%#x) is not RAM", addr, n)
	}
	return m[addr : addr+n], nil
}

func testConfig(mem Memory) Config {
	return Config{
		Memory: mem, CPUs: 2, IOAPICID: 2,
		VirtioMMIO: []MMIODevice{{Base: 0xfeb00000, Size: 0x1000, GSI: 5}, {Base: 0xfeb01000, Size: 0x1000, GSI: 6}},
		PCI: &PCI{
			ECAMBase: 0xe0000000,
			MMIO32:   Window{0xc0000000, 0x20000000},
			MMIO64:   Window{0x100000000, 0x100000000},
			Routes:   []INTxRoute{{Slot: 1, Pin: 1, GSI: 17}, {Slot: 2, Pin: 1, GSI: 18}},
		},
		SleepControl:  SleepRegister(DefaultSleepPort),
		SleepStatus:   SleepRegister(DefaultSleepPort),
		ResetRegister: PortRegister(DefaultResetPort),
		ResetValue:    DefaultResetValue,
		BootFlags:     Boot8042,
	}
}

func TestBuildLayout(t *testing.T) {
	mem := make(fakeMem, 0x100000)
	tabs, err := Build(testConfig(mem))
	if err != nil {
		t.Fatalf("Build() = %v; want nil", err)
	}
	if tabs.RSDP != DefaultBase {
		t.Errorf("RSDP = %#x; want %#x", tabs.RSDP, DefaultBase)
	}
	var sigs []string
	for _, tb := range tabs.List {
		sigs = append(sigs, tb.Signature)
		if tb.Addr%16 != 0 || tb.Addr < DefaultBase || tb.Addr+uint64(len(tb.Data)) > DefaultBase+DefaultSize {
			t.Errorf("%s at %#x+%#x: not 16-byte aligned in the region", tb.Signature, tb.Addr, len(tb.Data))
		}
		if !bytes.Equal(mem[tb.Addr:tb.Addr+uint64(len(tb.Data))], tb.Data) {
			t.Errorf("%s: guest memory differs from the returned bytes", tb.Signature)
		}
		if tb.Signature == "RSD PTR " {
			continue
		}
		if s := Sum(tb.Data); s != 0 {
			t.Errorf("%s checksum: sum = %#x; want 0", tb.Signature, s)
		}
		if n := binary.LittleEndian.Uint32(tb.Data[4:]); n != uint32(len(tb.Data)) {
			t.Errorf("%s length field = %d; want %d", tb.Signature, n, len(tb.Data))
		}
	}
	if got, want := strings.Join(sigs, ","), "RSD PTR ,RSDT,XSDT,FACP,DSDT,APIC,MCFG"; got != want {
		t.Errorf("tables = %s; want %s", got, want)
	}

	rsdp := tabs.List[0].Data
	if s := Sum(rsdp[:20]); s != 0 {
		t.Errorf("RSDP checksum (20 bytes): sum = %#x; want 0", s)
	}
	if s := Sum(rsdp); s != 0 {
		t.Errorf("RSDP extended checksum: sum = %#x; want 0", s)
	}
	le := binary.LittleEndian
	get := func(sig string) Table {
		tb, ok := tabs.Get(sig)
		if !ok {
			t.Fatalf("no %s table", sig)
		}
		return tb
	}
	if rsdp[15] != 2 || le.Uint32(rsdp[20:]) != 36 || le.Uint64(rsdp[24:]) != get("XSDT").Addr || uint64(le.Uint32(rsdp[16:])) != get("RSDT").Addr {
		t.Errorf("RSDP = % x; want revision 2, length 36, RSDT %#x, XSDT %#x", rsdp, get("RSDT").Addr, get("XSDT").Addr)
	}
	x := get("XSDT").Data[headerSize:]
	for i, sig := range []string{"FACP", "APIC", "MCFG"} {
		if a := le.Uint64(x[8*i:]); a != get(sig).Addr {
			t.Errorf("XSDT entry %d = %#x; want %s at %#x", i, a, sig, get(sig).Addr)
		}
	}

	f := get("FACP").Data
	if len(f) != fadtSize || f[8] != 6 {
		t.Errorf("FADT length %d revision %d; want %d, 6", len(f), f[8], fadtSize)
	}
	if fl := le.Uint32(f[offFlags:]); fl&flagHWReduced == 0 {
		t.Errorf("FADT flags = %#x; want HW_REDUCED_ACPI", fl)
	}
	dsdt := get("DSDT").Addr
	if uint64(le.Uint32(f[offDSDT:])) != dsdt || le.Uint64(f[offXDSDT:]) != dsdt {
		t.Errorf("FADT DSDT = %#x, X_DSDT = %#x; want %#x", le.Uint32(f[offDSDT:]), le.Uint64(f[offXDSDT:]), dsdt)
	}
	wantGAS := []byte{SpaceSystemIO, 8, 0, 1, 0xc0, 0x03, 0, 0, 0, 0, 0, 0}
	for _, off := range []int{offSleepCtl, offSleepStatus} {
		if g := f[off : off+12]; !bytes.Equal(g, wantGAS) {
			t.Errorf("FADT GAS at %d = % x; want % x", off, g, wantGAS)
		}
	}
	if ba := le.Uint16(f[offBootArch:]); ba != Boot8042 {
		t.Errorf("IAPC_BOOT_ARCH = %#x; want %#x", ba, Boot8042)
	}

	m := get("APIC").Data[headerSize:]
	wantMADT := []byte{
		0x00, 0x00, 0xe0, 0xfe, 1, 0, 0, 0, // LAPIC address, PCAT_COMPAT
		0, 8, 0, 0, 1, 0, 0, 0, // CPU 0
		0, 8, 1, 1, 1, 0, 0, 0, // CPU 1
		1, 12, 2, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0, // IOAPIC 2
		2, 10, 0, 0, 2, 0, 0, 0, 0, 0, // IRQ 0 -> GSI 2
	}
	if !bytes.Equal(m, wantMADT) {
		t.Errorf("MADT body = % x; want % x", m, wantMADT)
	}
	mc := get("MCFG").Data[headerSize:]
	wantMCFG := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if !bytes.Equal(mc, wantMCFG) {
		t.Errorf("MCFG body = % x; want % x", mc, wantMCFG)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(c *Config)
	}{
		{"no CPUs", func(c *Config) { c.CPUs = 0 }},
		{"no sleep register", func(c *Config) { c.SleepControl = GAS{} }},
		{"unaligned base", func(c *Config) { c.Base, c.Size = 0xe0008, 0x10000 }},
		{"region too small", func(c *Config) { c.Base, c.Size = 0xe0000, 0x100 }},
		{"outside memory", func(c *Config) { c.Base, c.Size = 0x200000, 0x10000 }},
		{"bad _PRT pin", func(c *Config) { c.PCI.Routes[0].Pin = 5 }},
		{"SLP_TYP too big", func(c *Config) { c.S5Type = 8 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(make(fakeMem, 0x100000))
			tt.edit(&c)
			if _, err := Build(c); err == nil {
				t.Errorf("Build() = nil error; want one")
			}
		})
	}
}

func TestSleepControl(t *testing.T) {
	off := 0
	s := &SleepControl{S5Type: SleepTypeS5, PowerOff: func() { off++ }}
	for _, v := range []byte{SleepTypeS5 << 2, SleepControlValue(3), 0} {
		s.Write(0, []byte{v})
	}
	if off != 0 {
		t.Fatalf("PowerOff called %d times for non-S5 writes; want 0", off)
	}
	s.Write(0, []byte{SleepControlValue(SleepTypeS5)}) // 0x34, what Linux writes
	if off != 1 {
		t.Errorf("PowerOff called %d times after writing %#x; want 1", off, SleepControlValue(SleepTypeS5))
	}
}

// TestIASLDisassembly runs iasl -d on every generated table: it must
// parse them, and the DSDT must show the devices and \_S5.
func TestIASLDisassembly(t *testing.T) {
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		t.Skip("iasl not installed (apt-get install -y acpica-tools)")
	}
	tabs, err := Build(testConfig(make(fakeMem, 0x100000)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	want := map[string][]string{
		"DSDT": {`"LNRO0005"`, `EisaId ("PNP0A08")`, `EisaId ("PNP0A03")`, `EisaId ("PNP0C02")`, "_S5", "Package (0x04)", "_PRT",
			"Memory32Fixed (ReadWrite,", "0xFEB01000", "WordBusNumber", "QWordMemory", "0x0001FFFF"},
		"FACP": {"Hardware Reduced (V5) : 1", "Sleep Control Register", "Address : 00000000000003C0",
			"Reset Register Supported (V2) : 1", "Space ID : 01 [SystemIO]", "Address : 00000000000003C1", "Value to cause reset : 0E"},
		"APIC": {"Processor Local APIC", "I/O APIC", "Interrupt Source Override"},
		"MCFG": {"Base Address : 00000000E0000000"},
		"XSDT": {"ACPI Table Address   0"},
	}
	for _, tb := range tabs.List[1:] {
		bin := filepath.Join(dir, strings.ToLower(tb.Signature)+".dat")
		if err := os.WriteFile(bin, tb.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(iasl, "-d", bin).CombinedOutput()
		if err != nil {
			t.Errorf("iasl -d %s: %v\n%s", tb.Signature, err, out)
			continue
		}
		dsl, err := os.ReadFile(strings.TrimSuffix(bin, ".dat") + ".dsl")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(dsl), "**** Invalid") || bytes.Contains(out, []byte("Error")) {
			t.Errorf("iasl -d %s reports problems:\n%s\n%s", tb.Signature, out, dsl)
		}
		for _, s := range want[tb.Signature] {
			if !strings.Contains(string(dsl), s) {
				t.Errorf("iasl -d %s: disassembly lacks %q:\n%s", tb.Signature, s, dsl)
			}
		}
	}
}
