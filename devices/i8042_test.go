package devices

import "testing"

func TestI8042Reset(t *testing.T) {
	tests := []struct {
		name   string
		writes [][2]byte // offset, value
		reset  bool
	}{
		{"command 0xfe", [][2]byte{{4, 0xfe}}, true},
		{"output port bit 0 low", [][2]byte{{4, 0xd1}, {0, 0xfe}}, true},
		{"output port bit 0 high", [][2]byte{{4, 0xd1}, {0, 0xff}}, false},
		{"self test only", [][2]byte{{4, 0xaa}}, false},
	}
	for _, tt := range tests {
		resets := 0
		k := NewI8042(func() { resets++ })
		for _, w := range tt.writes {
			k.Write(uint64(w[0]), []byte{w[1]})
		}
		if (resets == 1) != tt.reset {
			t.Errorf("%s: resets = %d; want reset=%v", tt.name, resets, tt.reset)
		}
	}
}

func TestI8042Responses(t *testing.T) {
	k := NewI8042(func() {})
	read := func(off uint64) byte { b := []byte{0}; k.Read(off, b); return b[0] }
	if s := read(4); s&statusOBF != 0 {
		t.Errorf("status = %#x; want output buffer empty at start", s)
	}
	k.Write(4, []byte{0xaa})
	if s := read(4); s&statusOBF == 0 {
		t.Errorf("status = %#x after self test; want OBF", s)
	}
	if v := read(0); v != 0x55 {
		t.Errorf("self test answer = %#x; want 0x55", v)
	}
	k.Write(4, []byte{0x60})
	k.Write(0, []byte{0x47})
	k.Write(4, []byte{0x20})
	if v := read(0); v != 0x47 {
		t.Errorf("configuration byte = %#x; want 0x47", v)
	}
	for i := 0; i < 1000; i++ { // a guest that never reads
		k.Write(4, []byte{0x20})
	}
	if len(k.out) > 16 {
		t.Errorf("output queue grew to %d bytes; want it bounded", len(k.out))
	}
}

func TestDebugExit(t *testing.T) {
	got := -1
	d := NewDebugExit(func(s int) { got = s })
	d.Write(0, []byte{7})
	if got != 7 {
		t.Errorf("exit status = %d; want 7", got)
	}
}
