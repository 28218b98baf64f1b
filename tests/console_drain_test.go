package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestConsoleDrainOnPowerOff: what the guest put in a port's TX queue
// right before powering off reaches the port's file chardev in full
// (DESIGN.md: it is written out before vmm exits), over both
// transports. The guest's vs-put returns without waiting for the device:
// with a kick, the ioeventfd has it but the event loop may not have run
// yet; with nokick the buffers sit in the avail ring, as they may while
// the device suppresses notifications. Before vmm drained its queues at
// exit, every nokick case came out empty and a kicked one now and then.
func TestConsoleDrainOnPowerOff(t *testing.T) {
	needKVM(t)
	const size = 256 << 10
	tests := []struct {
		name   string
		device string // the port's -device, with chardev=c
		port   string // its name for vs-put
		nokick bool
	}{
		{"console0-kick", "virtconsole,chardev=c", "#0", false},
		{"console0-nokick", "virtconsole,chardev=c", "#0", true},
		{"console1-nokick", "virtconsole,chardev=c,name=con1,nr=1", "con1", true},
		{"serialport-nokick", "virtserialport,chardev=c,name=p", "p", true},
	}
	for _, transport := range []string{"virtio-serial-pci", "virtio-serial-device"} {
		for _, tt := range tests {
			t.Run(transport+"/"+tt.name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "port.out")
				put, echo := fmt.Sprintf("vs-put %s 256K", tt.port), fmt.Sprintf("guest: vs-put %s %d", tt.port, size)
				if tt.nokick {
					put, echo = put+" nokick", echo+" nokick"
				}
				r := runVMM(t, "-kernel", guestELF(t), "-m", "256M", "-device", transport,
					"-chardev", "file,id=c,path="+out, "-device", tt.device,
					"-append", put+"; poweroff")
				if r.status != 0 {
					t.Fatalf("exit status %d; want 0 (ACPI power-off)\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
				}
				checkLines(t, r.stdout, []string{echo})
				got, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != size {
					t.Fatalf("%s holds %d bytes after the power-off; want %d\nstderr:\n%s", out, len(got), size, r.stderr)
				}
				if want := pattern(0, size); !bytes.Equal(got, want) {
					i := 0
					for got[i] == want[i] {
						i++
					}
					t.Errorf("byte %d of %s is %#x; want %#x", i, out, got[i], want[i])
				}
			})
		}
	}
}
