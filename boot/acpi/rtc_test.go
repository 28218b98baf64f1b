package acpi

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rtcDevice is the DSDT's RTC device, whole: ports 0x70-0x71, no IRQ.
var rtcDevice = Device("RTC", Name("_HID", eisa("PNP0B00")), Name("_CRS", ResourceTemplate(IO(0x70, 0x70, 1, 2))))

// TestFADTBootFlags: IAPC_BOOT_ARCH is what the config says; with a CMOS
// RTC the FADT names its century byte and the DSDT describes it (PNP0B00,
// ports 0x70-0x71, no interrupt), without one neither does.
func TestFADTBootFlags(t *testing.T) {
	for _, c := range []struct {
		name    string
		flags   uint16
		century byte
		rtc     bool
	}{
		{"no 8042, no VGA, CMOS RTC (vmm)", BootNoVGA, 0x32, true},
		{"8042 and CMOS RTC (a PC)", BootLegacyDevices | Boot8042, 0x32, true},
		{"no CMOS RTC", BootNoVGA | BootNoCMOSRTC, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(nil)
			cfg.BootFlags = c.flags
			tabs, err := Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			f, _ := tabs.Get("FACP")
			if f.Data[8] < 2 {
				t.Errorf("FADT revision = %d; want >= 2 (Linux ignores IAPC_BOOT_ARCH's 8042 flag below)", f.Data[8])
			}
			if got := le.Uint16(f.Data[offBootArch:]); got != c.flags {
				t.Errorf("FADT IAPC_BOOT_ARCH = %#04x; want %#04x", got, c.flags)
			}
			if got := f.Data[offCentury]; got != c.century {
				t.Errorf("FADT CENTURY = %#02x; want %#02x", got, c.century)
			}
			d, _ := tabs.Get("DSDT")
			if got := bytes.Contains(d.Data, rtcDevice); got != c.rtc {
				t.Errorf("DSDT has the PNP0B00 RTC device: %v; want %v", got, c.rtc)
			}
			if Sum(f.Data) != 0 || Sum(d.Data) != 0 {
				t.Errorf("FADT/DSDT checksums: sums %#x, %#x; want 0", Sum(f.Data), Sum(d.Data))
			}
		})
	}
}

// TestIASLRTC: iasl reads vmm's flags back as no 8042, no VGA, a CMOS
// RTC with its century at 0x32, and the RTC device in the DSDT.
func TestIASLRTC(t *testing.T) {
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		t.Skip("iasl not installed (apt-get install -y acpica-tools)")
	}
	cfg := testConfig(nil)
	cfg.BootFlags = BootNoVGA
	tabs, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for sig, want := range map[string][]string{
		"FACP": {"RTC Century Index : 32", "Boot Flags (decoded below) : 0004",
			"8042 Present on ports 60/64 (V2) : 0", "VGA Not Present (V4) : 1", "CMOS RTC Not Present (V5) : 0"},
		"DSDT": {"Device (RTC)", `EisaId ("PNP0B00")`, "IO (Decode16,\n                    0x0070,"},
	} {
		tb, _ := tabs.Get(sig)
		bin := filepath.Join(dir, strings.ToLower(sig)+".dat")
		if err := os.WriteFile(bin, tb.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(iasl, "-d", bin).CombinedOutput(); err != nil {
			t.Fatalf("iasl -d %s: %v\n%s", sig, err, out)
		}
		dsl, err := os.ReadFile(strings.TrimSuffix(bin, ".dat") + ".dsl")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range want {
			if !strings.Contains(string(dsl), s) {
				t.Errorf("iasl -d %s: disassembly lacks %q:\n%s", sig, s, dsl)
			}
		}
	}
}
