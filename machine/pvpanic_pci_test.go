package machine

import (
	"encoding/binary"
	"path/filepath"
	"testing"

	"vmm/devices/pci"
	"vmm/kvm"
	"vmm/snapshot"
)

// pciConfig reads or writes 4 bytes of slot's configuration through the
// 0xcf8/0xcfc mechanism, as a guest does.
func pciConfig(t *testing.T, m *Machine, slot, reg int, write *uint32) uint32 {
	t.Helper()
	dev, off, ok := m.pio.find(pci.ConfigIOPort, 4)
	if !ok {
		t.Fatal("no PCI configuration ports")
	}
	addr := make([]byte, 4)
	binary.LittleEndian.PutUint32(addr, 1<<31|uint32(slot)<<11|uint32(reg))
	dev.Write(off, addr)
	data := make([]byte, 4)
	if write != nil {
		binary.LittleEndian.PutUint32(data, *write)
		dev.Write(off+4, data)
		return *write
	}
	dev.Read(off+4, data)
	return binary.LittleEndian.Uint32(data)
}

// TestPVPanicPCI: -device pvpanic-pci is QEMU's 1b36:0011 in the slot
// after the virtio functions, with a 16-byte memory BAR whose register
// reads the supported events; the command register the guest wrote
// comes back from a snapshot.
func TestPVPanicPCI(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	const mem, machine = 64 << 20, "test: pc, pvpanic-pci"
	m, err := New(Config{MemSize: mem, CPUs: 1, Kernel: testGuest(t), PVPanicPCI: true, StartPaused: true,
		Cmdline: "loop 2000000000; exit 5"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if id := pciConfig(t, m, 1, 0, nil); id != 0x0011_1b36 {
		t.Fatalf("slot 1 vendor/device = %#x; want 0x00111b36", id)
	}
	if class := pciConfig(t, m, 1, 8, nil) >> 8; class != 0x088000 {
		t.Errorf("class = %#x; want 0x088000", class)
	}
	bar := uint64(pciConfig(t, m, 1, 0x10, nil) &^ 0xf)
	ev := make([]byte, 1)
	if dev, off, ok := m.mmio.find(bar, 1); !ok {
		t.Fatalf("nothing at BAR 0 (%#x)", bar)
	} else if dev.Read(off, ev); ev[0] != 3 {
		t.Errorf("pvpanic register reads %d; want the supported events, 3", ev[0])
	}
	cmd := uint32(0x2) // memory space on, as Linux's pcim_enable_device leaves it
	pciConfig(t, m, 1, 4, &cmd)

	exited := make(chan Exit, 1)
	go func() { exited <- m.Run() }()
	st, err := m.SaveState(machine)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vm.snap")
	if err := m.WriteSnapshot(path, "test", st); err != nil {
		t.Fatal(err)
	}
	m.Stop("saved")
	<-exited
	f, err := snapshot.Open(path, snapshot.Identity{MemSize: mem, CPUs: 1, Machine: machine})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m2, err := New(Config{MemSize: mem, CPUs: 1, PVPanicPCI: true, Restore: f, StartPaused: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := pciConfig(t, m2, 1, 4, nil) & 0xffff; got != cmd {
		t.Errorf("restored command register = %#x; want %#x", got, cmd)
	}
}
