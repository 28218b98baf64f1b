package machine

import (
	"testing"

	"vmm/devices"
	"vmm/kvm"
)

// TestMachinePowerButton: with ACPI, PowerButton presses the GED's
// button (the event register at its port then reads the power-button
// bit once, the interrupt line taking the pulse without error); without
// ACPI there is no GED and PowerButton reports false.
func TestMachinePowerButton(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	for _, tt := range []struct {
		name   string
		noACPI bool
		want   byte
	}{
		{"ACPI", false, devices.GEDPowerButton},
		{"acpi=off", true, 0xff}, // nothing at the port: reads as all ones
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(Config{MemSize: 64 << 20, CPUs: 1, Kernel: testGuest(t), NoACPI: tt.noACPI})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got := m.PowerButton(); got != !tt.noACPI {
				t.Errorf("PowerButton() = %v; want %v", got, !tt.noACPI)
			}
			b := []byte{0}
			m.pio.Read(devices.GEDPort, b)
			if b[0] != tt.want {
				t.Errorf("GED register after PowerButton = %#x; want %#x", b[0], tt.want)
			}
			if !tt.noACPI {
				m.pio.Read(devices.GEDPort, b)
				if b[0] != 0 {
					t.Errorf("GED register read again = %#x; want 0", b[0])
				}
			}
		})
	}
}
