package machine

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"vmm/devices/virtio"
	"vmm/kvm"
)

// nullDevice is a virtio device with one queue and no behaviour, to
// place transports.
type nullDevice struct{}

func (nullDevice) Type() uint32                          { return 3 }
func (nullDevice) Features() uint64                      { return 0 }
func (nullDevice) QueueSizes() []uint16                  { return []uint16{16} }
func (nullDevice) ReadConfig(uint64, []byte)             {}
func (nullDevice) WriteConfig(uint64, []byte)            {}
func (nullDevice) Activate(virtio.ActivateContext) error { return nil }
func (nullDevice) Reset()                                {}

func testGuest(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "tests", "guest", "build", "guest.elf"))
	if err != nil {
		t.Fatalf("test guest not built (make guest): %v", err)
	}
	return b
}

// TestMachineLayout builds a VM with a virtio-mmio and a virtio-pci
// device and checks what the guest will find: the command-line word for
// the mmio device, the PCI host bridge and the device on bus 0, and the
// ACPI RSDP where the PVH start_info says it is.
func TestMachineLayout(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	m, err := New(Config{MemSize: 64 << 20, CPUs: 2, Kernel: testGuest(t), Cmdline: "exit 0",
		VirtioMMIO: []virtio.Device{nullDevice{}}, VirtioPCI: []virtio.Device{nullDevice{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cmdline, _ := m.mem.Slice(0x20000, 64)
	if !bytes.Contains(cmdline, []byte("exit 0 virtio_mmio.device=4K@0xfeb00000:5")) {
		t.Errorf("command line = %q; want the virtio_mmio.device word", bytes.TrimRight(cmdline, "\x00"))
	}
	// Mechanism #1: 00:00.0 is the host bridge, 00:01.0 the virtio device.
	readID := func(dev int) uint32 {
		addr := make([]byte, 4)
		binary.LittleEndian.PutUint32(addr, 1<<31|uint32(dev)<<11)
		m.pio.Write(0xcf8, addr)
		v := make([]byte, 4)
		m.pio.Read(0xcfc, v)
		return binary.LittleEndian.Uint32(v)
	}
	if id := readID(0); id&0xffff != 0x8086 {
		t.Errorf("00:00.0 vendor/device = %#x; want the Intel host bridge", id)
	}
	if id := readID(1); id != 0x1043<<16|0x1af4 {
		t.Errorf("00:01.0 vendor/device = %#x; want virtio console 1af4:1043", id)
	}
	addr := make([]byte, 4)
	binary.LittleEndian.PutUint32(addr, 1<<31|1<<11|0x3c)
	m.pio.Write(0xcf8, addr)
	line := make([]byte, 1)
	m.pio.Read(0xcfc, line)
	if line[0] != 17 {
		t.Errorf("00:01.0 interrupt line = %d; want GSI 17 (16 + slot 1)", line[0])
	}
	if id := readID(2); id != 0xffffffff {
		t.Errorf("00:02.0 = %#x; want all ones (absent)", id)
	}
	si, _ := m.mem.Slice(0x6000, 64)
	rsdp := binary.LittleEndian.Uint64(si[32:])
	sig, err := m.mem.Slice(rsdp, 8)
	if err != nil || string(sig) != "RSD PTR " {
		t.Errorf("start_info.rsdp_paddr = %#x holding %q; want an RSDP", rsdp, sig)
	}
}

// TestMachineNoACPI: -machine acpi=off leaves the RSDP out.
func TestMachineNoACPI(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	m, err := New(Config{MemSize: 64 << 20, CPUs: 1, Kernel: testGuest(t), NoACPI: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	si, _ := m.mem.Slice(0x6000, 64)
	if rsdp := binary.LittleEndian.Uint64(si[32:]); rsdp != 0 {
		t.Errorf("rsdp_paddr = %#x with ACPI off; want 0", rsdp)
	}
}
