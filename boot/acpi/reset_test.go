package acpi

import "testing"

// TestFADTResetRegister: with a reset register in the config the FADT
// sets RESET_REG_SUP and names the register and its value, as ACPICA
// reads them (RESET_REG at 116, RESET_VALUE at 128); without one the
// flag is clear, so an OS looks elsewhere.
func TestFADTResetRegister(t *testing.T) {
	for _, c := range []struct {
		name  string
		reg   GAS
		value byte
	}{
		{"vmm's port", PortRegister(DefaultResetPort), DefaultResetValue},
		{"none", GAS{}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(nil)
			cfg.ResetRegister, cfg.ResetValue = c.reg, c.value
			tabs, err := Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			f, _ := tabs.Get("FACP")
			flags := le.Uint32(f.Data[offFlags:])
			if got, want := flags&flagResetReg != 0, c.reg.Address != 0; got != want {
				t.Errorf("FADT flags = %#x: RESET_REG_SUP %v; want %v", flags, got, want)
			}
			if flags&flagHWReduced == 0 {
				t.Errorf("FADT flags = %#x; want HW_REDUCED_ACPI kept", flags)
			}
			want := make([]byte, 12)
			if c.reg.Address != 0 {
				want = []byte{SpaceSystemIO, 8, 0, 1, 0xc1, 0x03, 0, 0, 0, 0, 0, 0}
			}
			if got := f.Data[offResetReg : offResetReg+12]; string(got) != string(want) {
				t.Errorf("FADT RESET_REG = % x; want % x", got, want)
			}
			if got := f.Data[offResetValue]; got != c.value {
				t.Errorf("FADT RESET_VALUE = %#x; want %#x", got, c.value)
			}
			if Sum(f.Data) != 0 {
				t.Errorf("FADT checksum: sum = %#x; want 0", Sum(f.Data))
			}
		})
	}
}

// TestResetControl: only RESET_VALUE, written at the register itself,
// resets; a sleep-style value or another offset does nothing.
func TestResetControl(t *testing.T) {
	n := 0
	r := &ResetControl{Value: DefaultResetValue, Reset: func() { n++ }}
	r.Write(0, []byte{SleepControlValue(SleepTypeS5)})
	r.Write(0, []byte{0x06})
	r.Write(1, []byte{DefaultResetValue})
	r.Write(0, nil)
	if n != 0 {
		t.Fatalf("Reset called %d times for other writes; want 0", n)
	}
	got := []byte{0xff}
	r.Read(0, got)
	if got[0] != 0 {
		t.Errorf("Read = %#x; want 0", got[0])
	}
	r.Write(0, []byte{DefaultResetValue})
	if n != 1 {
		t.Errorf("Reset called %d times after writing %#x; want 1", n, DefaultResetValue)
	}
}
