package machine

import (
	"bytes"
	"strings"
	"testing"

	"vmm/boot"
	"vmm/boot/acpi"
	"vmm/kvm"
)

// TestMachineResetPaths: the ways a guest resets the machine that vmm
// provides besides the i8042 and a triple fault. The reset vector holds
// code (Linux's reboot on a hardware-reduced ACPI platform jumps there),
// and the FADT's reset register is a port that ends the VM with status 0
// on its reset value, and ignores other values.
func TestMachineResetPaths(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	m, err := New(Config{MemSize: 64 << 20, CPUs: 1, Kernel: testGuest(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	code, err := m.mem.Slice(boot.ResetVectorAddr, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0xB0, 0xFE, 0xE6, 0x64}; !bytes.Equal(code, want) {
		t.Errorf("reset vector bytes = % x; want % x (mov al, 0xfe; out 0x64, al)", code, want)
	}
	m.pio.Write(acpi.DefaultResetPort, []byte{0x06})
	select {
	case <-m.done:
		t.Fatalf("writing 0x06 to the reset register ended the VM: %+v", m.exit)
	default:
	}
	m.pio.Write(acpi.DefaultResetPort, []byte{acpi.DefaultResetValue})
	select {
	case <-m.done:
	default:
		t.Fatalf("writing %#x to port %#x did not end the VM", acpi.DefaultResetValue, acpi.DefaultResetPort)
	}
	if e := m.Wait(); e.Status != 0 || e.Err != nil || !strings.Contains(e.Reason, "reset") {
		t.Errorf("exit = %+v; want status 0 for a guest reset", e)
	}
}
