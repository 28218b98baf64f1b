package machine

import (
	"bytes"
	"testing"
)

// regDevice records accesses and reads back a fixed pattern.
type regDevice struct {
	lastOff  uint64
	lastData []byte
	fill     byte
}

func (d *regDevice) Read(off uint64, data []byte) {
	d.lastOff = off
	for i := range data {
		data[i] = d.fill
	}
}

func (d *regDevice) Write(off uint64, data []byte) {
	d.lastOff = off
	d.lastData = append([]byte(nil), data...)
}

func TestBusDispatch(t *testing.T) {
	b := NewBus("pio")
	a, c := &regDevice{fill: 0xaa}, &regDevice{fill: 0xcc}
	if err := b.Add(0x3f8, 8, "com1", a); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(0x60, 5, "i8042", c); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr    uint64
		n       int
		want    byte
		wantOff uint64
		hit     bool
	}{
		{0x3f8, 1, 0xaa, 0, true},
		{0x3ff, 1, 0xaa, 7, true},
		{0x3fe, 2, 0xaa, 6, true},
		{0x3ff, 2, 0xff, 0, false}, // straddles the end
		{0x400, 1, 0xff, 0, false},
		{0x3f7, 1, 0xff, 0, false},
		{0x64, 1, 0xcc, 4, true},
		{0x0, 4, 0xff, 0, false},
	}
	for _, tt := range tests {
		data := make([]byte, tt.n)
		hit := b.Read(tt.addr, data)
		if hit != tt.hit || !bytes.Equal(data, bytes.Repeat([]byte{tt.want}, tt.n)) {
			t.Errorf("Read(%#x, %d) = %x, %v; want %x, %v", tt.addr, tt.n, data, hit, tt.want, tt.hit)
		}
	}
	if !b.Write(0x3fb, []byte{0x80}) || a.lastOff != 3 || !bytes.Equal(a.lastData, []byte{0x80}) {
		t.Errorf("Write(0x3fb) reached off %d data %x; want off 3 data 80", a.lastOff, a.lastData)
	}
	if b.Write(0x500, []byte{1}) {
		t.Errorf("Write(0x500) = true; want false for an absent device")
	}
}

func TestBusOverlap(t *testing.T) {
	b := NewBus("mmio")
	if err := b.Add(0x1000, 0x1000, "a", &regDevice{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ base, size uint64 }{{0x1000, 1}, {0xfff, 2}, {0x1fff, 0x10}, {0x800, 0x2000}} {
		if err := b.Add(r.base, r.size, "b", &regDevice{}); err == nil {
			t.Errorf("Add(%#x, %#x) = nil; want overlap error", r.base, r.size)
		}
	}
	if err := b.Add(0x2000, 0x10, "c", &regDevice{}); err != nil {
		t.Errorf("Add(0x2000) adjacent = %v; want nil", err)
	}
	if err := b.Add(0xffff_ffff_ffff_fff0, 0x20, "wrap", &regDevice{}); err == nil {
		t.Errorf("Add(wrapping range) = nil; want error")
	}
	if !b.Remove(0x1000) || b.Read(0x1000, make([]byte, 1)) {
		t.Errorf("after Remove(0x1000) the device still answers")
	}
}
