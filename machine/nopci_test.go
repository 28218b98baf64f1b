package machine

import (
	"encoding/binary"
	"strings"
	"testing"

	"vmm/devices/virtio"
	"vmm/kvm"
)

// TestMachineNoPCI: a machine without PCI (-M microvm) answers neither
// configuration mechanism (0xcf8 reads as absent, the ECAM window is
// unclaimed), still has its virtio-mmio device, and refuses a virtio-pci
// device instead of dropping it.
func TestMachineNoPCI(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	m, err := New(Config{MemSize: 64 << 20, CPUs: 1, Kernel: testGuest(t), NoPCI: true,
		VirtioMMIO: []virtio.Device{nullDevice{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	addr := make([]byte, 4)
	binary.LittleEndian.PutUint32(addr, 1<<31)
	m.pio.Write(0xcf8, addr)
	v := make([]byte, 4)
	if m.pio.Read(0xcfc, v) || binary.LittleEndian.Uint32(v) != 0xffffffff {
		t.Errorf("00:00.0 through 0xcfc = %#x; want no device there", v)
	}
	if m.mmio.Read(ecamBase, v) {
		t.Errorf("ECAM window at %#x is claimed; want nothing there", ecamBase)
	}
	if !m.mmio.Read(virtioMMIOBase, v) {
		t.Errorf("no virtio-mmio device at %#x", virtioMMIOBase)
	}
	_, err = New(Config{MemSize: 64 << 20, CPUs: 1, Kernel: testGuest(t), NoPCI: true,
		VirtioPCI: []virtio.Device{nullDevice{}}})
	if err == nil || !strings.Contains(err.Error(), "without PCI") {
		t.Errorf("New(NoPCI with a virtio-pci device) = %v; want an error", err)
	}
}
