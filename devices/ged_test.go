package devices

import (
	"bytes"
	"testing"
)

// TestGED: a press raises the interrupt and sets the power-button bit;
// the first read returns it and clears it, so the next reads 0; two
// presses before a read are one event; writes change nothing, and
// reads of any width (including none) are safe.
func TestGED(t *testing.T) {
	raised := 0
	g := NewGED(func() { raised++ })
	read := func(n int) []byte {
		b := bytes.Repeat([]byte{0xaa}, n)
		g.Read(0, b)
		return b
	}
	if got := read(1); got[0] != 0 {
		t.Errorf("GED read before any event = %#x; want 0", got[0])
	}
	g.PowerButton()
	if raised != 1 {
		t.Errorf("after PowerButton: interrupt raised %d times; want 1", raised)
	}
	g.Write(0, []byte{0xff})
	g.Write(0, nil)
	if got := read(1); got[0] != GEDPowerButton {
		t.Errorf("GED read after PowerButton = %#x; want %#x", got[0], GEDPowerButton)
	}
	if got := read(1); got[0] != 0 {
		t.Errorf("GED second read = %#x; want 0 (the first read clears)", got[0])
	}
	g.PowerButton()
	g.PowerButton()
	if raised != 3 {
		t.Errorf("after three presses: interrupt raised %d times; want 3", raised)
	}
	if got, want := read(4), []byte{GEDPowerButton, 0, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("GED 4-byte read after two presses = % x; want % x", got, want)
	}
	if got := read(2); !bytes.Equal(got, []byte{0, 0}) {
		t.Errorf("GED read after the events were taken = % x; want 00 00", got)
	}
	g.Read(0, nil) // no panic
}
