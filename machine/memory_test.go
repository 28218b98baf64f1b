package machine

import (
	"encoding/binary"
	"testing"

	"vmm/kvm"
)

func TestMemoryLayout(t *testing.T) {
	tests := []struct {
		size uint64
		want [][2]uint64 // start, size
	}{
		{256 << 20, [][2]uint64{{0, 256 << 20}}},
		{3 << 30, [][2]uint64{{0, 3 << 30}}},
		{4 << 30, [][2]uint64{{0, 3 << 30}, {4 << 30, 1 << 30}}},
	}
	for _, tt := range tests {
		m, err := NewMemory(tt.size)
		if err != nil {
			t.Fatalf("NewMemory(%d) = %v", tt.size, err)
		}
		ram := m.RAM()
		if len(ram) != len(tt.want) {
			t.Errorf("NewMemory(%d) has %d regions; want %d", tt.size, len(ram), len(tt.want))
		}
		for i := range ram {
			if i < len(tt.want) && (ram[i].Start != tt.want[i][0] || ram[i].Size != tt.want[i][1]) {
				t.Errorf("NewMemory(%d) region %d = %#x+%#x; want %#x+%#x", tt.size, i, ram[i].Start, ram[i].Size, tt.want[i][0], tt.want[i][1])
			}
		}
		if m.Size() != tt.size {
			t.Errorf("Size() = %d; want %d", m.Size(), tt.size)
		}
		m.Close()
	}
	for _, bad := range []uint64{0, 4096, 1<<20 + 1} {
		if _, err := NewMemory(bad); err == nil {
			t.Errorf("NewMemory(%d) = nil error; want an error", bad)
		}
	}
}

func TestMemorySliceBounds(t *testing.T) {
	m, err := NewMemory(4 << 30)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tests := []struct {
		addr, n uint64
		ok      bool
	}{
		{0, 4096, true},
		{3<<30 - 8, 8, true},
		{3<<30 - 8, 9, false}, // runs into the hole
		{3 << 30, 1, false},   // in the hole
		{4 << 30, 8, true},
		{5<<30 - 1, 1, true},
		{5 << 30, 1, false},
		{0xffff_ffff_ffff_fff0, 0x20, false}, // wraps
		{8, 0xffff_ffff_ffff_fffc, false},    // huge length
	}
	for _, tt := range tests {
		b, err := m.Slice(tt.addr, tt.n)
		if (err == nil) != tt.ok || (err == nil && uint64(len(b)) != tt.n) {
			t.Errorf("Slice(%#x, %#x) = len %d, %v; want ok=%v", tt.addr, tt.n, len(b), err, tt.ok)
		}
	}
	b, _ := m.Slice(4<<30, 4)
	copy(b, "ab12")
	if again, _ := m.Slice(4<<30+2, 2); string(again) != "12" {
		t.Errorf("Slice does not alias guest memory: got %q", again)
	}
}

// TestTranslateLongMode builds 4-level page tables with a 4 KiB page,
// a 2 MiB page and a 1 GiB page and checks each translation.
func TestTranslateLongMode(t *testing.T) {
	m, err := NewMemory(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	put := func(addr, v uint64) {
		b, err := m.Slice(addr, 8)
		if err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint64(b, v)
	}
	const pml4, pdpt, pd, pt = 0x10000, 0x11000, 0x12000, 0x13000
	put(pml4, pdpt|3)
	put(pdpt+0*8, pd|3)
	put(pdpt+1*8, 0x4000_0000|ptePS|3) // 1 GiB page at 1 GiB → 1 GiB
	put(pd+0*8, pt|3)
	put(pd+1*8, 0x60_0000|ptePS|3) // 2 MiB page at 2 MiB → 6 MiB
	put(pt+5*8, 0x77000|3)         // 4 KiB page at 20 KiB → 0x77000
	s := &kvm.Sregs{CR0: cr0PG | 1, CR3: pml4, CR4: cr4PAE, EFER: eferLMA | 1<<8}
	tests := []struct {
		linear, want uint64
		ok           bool
	}{
		{0x5123, 0x77123, true},
		{0x20_0000 + 0x1234, 0x60_1234, true},
		{0x4000_0000 + 0x12345, 0x4001_2345, true},
		{0x6000, 0, false}, // PTE not present
		{0x8000_0000, 0, false},
	}
	for _, tt := range tests {
		got, err := translate(m, s, tt.linear)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("translate(%#x) = %#x, %v; want %#x ok=%v", tt.linear, got, err, tt.want, tt.ok)
		}
	}
	if got, err := translate(m, &kvm.Sregs{}, 0x1234_5678); err != nil || got != 0x1234_5678 {
		t.Errorf("translate without paging = %#x, %v; want identity", got, err)
	}
}

func TestZeroPages(t *testing.T) {
	m, err := NewMemory(16 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, _ := m.Slice(0x10000, 0x3000)
	for i := range b {
		b[i] = 0xaa
	}
	if err := m.ZeroPages(0x11000, 0x1000); err != nil {
		t.Fatal(err)
	}
	for i, v := range b {
		want := byte(0xaa)
		if i >= 0x1000 && i < 0x2000 {
			want = 0
		}
		if v != want {
			t.Fatalf("byte %#x after ZeroPages(0x11000, 0x1000) = %#x; want %#x", 0x10000+i, v, want)
		}
	}
	if err := m.ZeroPages(0x11001, 0x1000); err == nil {
		t.Errorf("ZeroPages(unaligned) = nil; want an error")
	}
}
