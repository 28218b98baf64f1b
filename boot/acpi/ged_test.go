package acpi

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var testGED = GED{Port: 0x3c2, GSI: 13, PowerButton: 2}

// gedASL is the GED and PWRB of testGED as ASL, for iasl.
const gedASL = `DefinitionBlock ("", "DSDT", 2, "GOVMM ", "GOVMMDSD", 1)
{
    Scope (\_SB)
    {
        Device (GED)
        {
            Name (_HID, "ACPI0013")
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate ()
            {
                Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 13 }
            })
            OperationRegion (EREG, SystemIO, 0x3C2, 1)
            Field (EREG, ByteAcc, NoLock, WriteAsZeros) { ESEL, 8 }
            Method (_EVT, 1, Serialized)
            {
                If (Arg0 == 13)
                {
                    Local0 = ESEL
                    If ((Local0 & 2) == 2)
                    {
                        Notify (\_SB.PWRB, 0x80)
                    }
                }
            }
        }
        Device (PWRB)
        {
            Name (_HID, EisaId ("PNP0C0C"))
            Name (_UID, 0)
        }
    }
}
`

func iaslPath(t *testing.T) string {
	t.Helper()
	iasl, err := exec.LookPath("iasl")
	if err != nil {
		t.Skip("iasl not installed (apt-get install -y acpica-tools)")
	}
	return iasl
}

// TestGEDMatchesIASL: the encoder's GED and PWRB are, byte for byte,
// what iasl compiles from the ASL in ged's comment.
func TestGEDMatchesIASL(t *testing.T) {
	iasl := iaslPath(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "ged.asl")
	if err := os.WriteFile(src, []byte(gedASL), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(iasl, "-on", "-p", filepath.Join(dir, "ged"), src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iasl %s: %v\n%s", src, err, out)
	}
	aml, err := os.ReadFile(filepath.Join(dir, "ged.aml"))
	if err != nil {
		t.Fatal(err)
	}
	g := testGED
	terms, err := ged(&g)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := []byte(Scope(`\_SB`, terms...)), aml[headerSize:]; !bytes.Equal(got, want) {
		t.Errorf("ged(%+v) =\n% x\nwant (iasl)\n% x", g, got, want)
	}
}

// TestDSDTGED: with a GED configured, the DSDT disassembles (iasl -d)
// to the GED with its interrupt, event register and _EVT, and the
// power button it notifies; without one there is neither.
func TestDSDTGED(t *testing.T) {
	iasl := iaslPath(t)
	for _, tt := range []struct {
		name string
		ged  *GED
		want []string
		none []string
	}{
		{"GED", &testGED, []string{
			"Device (GED)",
			`Name (_HID, "ACPI0013"`,
			"Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )\n                {\n                    0x0000000D,",
			"OperationRegion (EREG, SystemIO, 0x03C2, One)",
			"Field (EREG, ByteAcc, NoLock, WriteAsZeros)",
			"ESEL,   8",
			"Method (_EVT, 1, Serialized)",
			"If ((Arg0 == 0x0D))",
			"Local0 = ESEL",
			"If (((Local0 & 0x02) == 0x02))",
			`Notify (\_SB.PWRB, 0x80)`,
			"Device (PWRB)",
			`Name (_HID, EisaId ("PNP0C0C")`,
		}, nil},
		{"none", nil, nil, []string{"ACPI0013", "PNP0C0C", "_EVT"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(nil)
			c.GED = tt.ged
			tabs, err := Build(c)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := tabs.Get("DSDT")
			if Sum(d.Data) != 0 {
				t.Errorf("DSDT checksum: sum %#x; want 0", Sum(d.Data))
			}
			bin := filepath.Join(t.TempDir(), "dsdt.dat")
			if err := os.WriteFile(bin, d.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(iasl, "-d", bin).CombinedOutput(); err != nil {
				t.Fatalf("iasl -d: %v\n%s", err, out)
			}
			dsl, err := os.ReadFile(strings.TrimSuffix(bin, ".dat") + ".dsl")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.want {
				if !strings.Contains(string(dsl), s) {
					t.Errorf("iasl -d DSDT lacks %q:\n%s", s, dsl)
				}
			}
			for _, s := range tt.none {
				if strings.Contains(string(dsl), s) {
					t.Errorf("iasl -d DSDT has %q though no GED was configured", s)
				}
			}
		})
	}
}

// TestGEDConfig: a GED without a port or a power-button bit is refused.
func TestGEDConfig(t *testing.T) {
	for _, g := range []GED{{GSI: 13, PowerButton: 2}, {Port: 0x3c2, GSI: 13}} {
		c := testConfig(nil)
		c.GED = &g
		if _, err := Build(c); err == nil {
			t.Errorf("Build with GED %+v = nil error; want one", g)
		}
	}
}

func TestFieldLength(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want []byte
	}{
		{8, []byte{0x08}},
		{0x3f, []byte{0x3f}},
		{0x40, []byte{0x40, 0x04}},
		{0x100, []byte{0x40, 0x10}},
		{0xfff, []byte{0x4f, 0xff}},
		{0x1000, []byte{0x80, 0x00, 0x01}},
	} {
		if got := fieldLength(tt.n); !bytes.Equal(got, tt.want) {
			t.Errorf("fieldLength(%#x) = % x; want % x", tt.n, got, tt.want)
		}
	}
}
