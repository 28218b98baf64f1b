package acpi

import (
	"bytes"
	"os"
	"testing"
)

func TestPkgLength(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x01}},
		{62, []byte{0x3f}},
		{63, []byte{0x41, 0x04}},          // 65 = 0x41: two bytes
		{0xffd, []byte{0x4f, 0xff}},       // 0xfff, the largest two-byte length
		{0xffe, []byte{0x81, 0x00, 0x01}}, // 0x1001
		{0xffffc, []byte{0x8f, 0xff, 0xff}},
		{0xffffd, []byte{0xc1, 0x00, 0x00, 0x01}},
	} {
		if got := pkgLength(tt.n); !bytes.Equal(got, tt.want) {
			t.Errorf("pkgLength(%#x) = % x; want % x", tt.n, got, tt.want)
		}
	}
}

func TestNameString(t *testing.T) {
	for _, tt := range []struct {
		path string
		want string
	}{
		{"_SB", "_SB_"},
		{"\\_SB", "\\_SB_"},
		{"\\", "\\\x00"},
		{"^PAR", "^PAR_"},
		{"_SB.PCI0", "\x2e_SB_PCI0"},
		{"\\_SB.VR00.XYZ", "\\\x2f\x03_SB_VR00XYZ_"},
	} {
		got, err := NameString(tt.path)
		if err != nil || string(got) != tt.want {
			t.Errorf("NameString(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
	for _, bad := range []string{"TOOLONG", "1ABC", "a", "_SB..X", "AB-C"} {
		if _, err := NameString(bad); err == nil {
			t.Errorf("NameString(%q) = nil error; want one", bad)
		}
	}
}

func TestInteger(t *testing.T) {
	for _, tt := range []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0x00}},
		{1, []byte{0x01}},
		{2, []byte{0x0a, 2}},
		{0xff, []byte{0x0a, 0xff}},
		{0x100, []byte{0x0b, 0, 1}},
		{0x10000, []byte{0x0c, 0, 0, 1, 0}},
		{1 << 32, []byte{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}},
	} {
		if got := Integer(tt.v); !bytes.Equal(got, tt.want) {
			t.Errorf("Integer(%#x) = % x; want % x", tt.v, got, tt.want)
		}
	}
}

func TestEISAID(t *testing.T) {
	for id, want := range map[string]uint32{"PNP0A08": 0x080ad041, "PNP0A03": 0x030ad041, "PNP0C02": 0x020cd041} {
		got, err := EISAID(id)
		if w := Integer(uint64(want)); err != nil || !bytes.Equal(got, w) {
			t.Errorf("EISAID(%q) = % x, %v; want % x", id, got, err, w)
		}
	}
	for _, bad := range []string{"PNP0A0", "pnp0a08", "PNP0A0G"} {
		if _, err := EISAID(bad); err == nil {
			t.Errorf("EISAID(%q) = nil error; want one", bad)
		}
	}
}

// encoderTerms mirrors testdata/encoder.asl.
func encoderTerms() AML {
	big := make([]byte, 100)
	huge := make([]byte, 5000)
	for i := range huge {
		huge[i] = byte(i)
		if i < len(big) {
			big[i] = byte(i)
		}
	}
	var b AML
	for _, term := range []AML{
		Name("I0", Integer(0)),
		Name("I1", Integer(1)),
		Name("IB", Integer(0x2a)),
		Name("IW", Integer(0x1234)),
		Name("ID", Integer(0x12345678)),
		Name("IQ", Integer(0x123456789a)),
		Name("STR", String("LNRO0005")),
		Name("EID", eisa("PNP0A08")),
		Name("ECI", eisa("PNP0C02")),
		Name("_S5", Package(Integer(5), Integer(5), Integer(0), Integer(0))),
		Scope("\\_SB",
			Device("VR00",
				Name("_HID", String("LNRO0005")),
				Name("_UID", Integer(0)),
				Name("^PAR", Integer(9)),
				Name("_CRS", ResourceTemplate(
					Memory32Fixed(true, 0xfeb00000, 0x1000),
					Interrupt(Edge, ActiveHigh, false, 5),
				)),
			),
			Device("PCI0",
				Name("_HID", eisa("PNP0A08")),
				Name("_CRS", ResourceTemplate(
					WordBusNumber(0, 0),
					IO(0xcf8, 0xcf8, 1, 8),
					WordIO(0, 0xcf7),
					DWordMemory(0xc0000000, 0xdfffffff),
					QWordMemory(0x100000000, 0x1ffffffff),
					Memory32Fixed(false, 0xe0000000, 0x100000),
					Interrupt(Level, ActiveLow, true, 16, 17),
				)),
				Name("_PRT", Package(Package(Integer(0x1ffff), Integer(0), Integer(0), Integer(16)))),
			),
			Method("FOO", 0, false, Return(Integer(0xf))),
			Method("BAR", 2, true, Return(Integer(0))),
		),
		Name("\\_SB.VR00.XYZ", Integer(7)),
		Name("\\_SB.DUAL", Integer(8)),
		Name("BIG", Buffer(big)),
		Name("HUGE", Buffer(huge)),
	} {
		b = append(b, term...)
	}
	return b
}

// TestAMLEncoderMatchesIASL compares the encoder with what iasl made of
// the same ASL (testdata/encoder.asl, compiled into encoder.aml).
func TestAMLEncoderMatchesIASL(t *testing.T) {
	want, err := os.ReadFile("testdata/encoder.aml")
	if err != nil {
		t.Fatal(err)
	}
	got := encoderTerms()
	want = want[headerSize:]
	if !bytes.Equal(got, want) {
		n := 0
		for n < len(got) && n < len(want) && got[n] == want[n] {
			n++
		}
		t.Fatalf("encoder output differs from iasl's at byte %#x (got %d bytes, want %d):\n got % x\nwant % x",
			n, len(got), len(want), got[n:min(n+16, len(got))], want[n:min(n+16, len(want))])
	}
}
