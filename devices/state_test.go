package devices

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// stateful is a device with snapshot state.
type stateful interface {
	SaveState() []byte
	RestoreState([]byte) error
}

// checkRefusals: every edit of good is refused with an error naming
// the device, and random bytes never panic.
func checkRefusals(t *testing.T, name string, fresh func() stateful, good []byte, edits map[string]func(b []byte) []byte) {
	t.Helper()
	for what, edit := range edits {
		if err := fresh().RestoreState(edit(bytes.Clone(good))); err == nil || !strings.Contains(err.Error(), name+" state") {
			t.Errorf("%s RestoreState with %s = %v; want a refusal naming %s", name, what, err, name)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := bytes.Clone(good)
		for range 3 {
			b[r.IntN(len(b))] = byte(r.Uint32())
		}
		fresh().RestoreState(b) // refused or taken, never a panic
	}
}

func TestUARTState(t *testing.T) {
	a := newUARTRig()
	a.write(regLCR, lcrDLAB|3)
	a.write(regData, 0x0c) // 9600 baud
	a.write(regLCR, 3)
	a.write(regSCR, 0x5a)
	a.write(regIIR, 1) // FIFO on
	a.write(regMCR, mcrOut2|3)
	a.write(regIER, ierRDI|ierTHRI)
	a.read(regIIR) // acknowledge THRE
	a.u.Receive([]byte("abc"))
	saved := a.u.SaveState()

	b := newUARTRig()
	if err := b.u.RestoreState(saved); err != nil {
		t.Fatal(err)
	}
	if len(b.levels) != 1 || !b.levels[0] {
		t.Errorf("interrupt line after restore = %v; want raised once (data waits)", b.levels)
	}
	if got := b.u.SaveState(); !bytes.Equal(got, saved) {
		t.Errorf("SaveState after RestoreState = %x; want %x", got, saved)
	}
	for _, off := range []uint64{regIIR, regLSR, regData, regData, regData, regLSR, regIIR, regMCR, regSCR, regIER} {
		if x, y := a.read(off), b.read(off); x != y {
			t.Errorf("register %d: restored UART reads %#x; the original %#x", off, y, x)
		}
	}
	b.write(regLCR, lcrDLAB|3)
	if dll := b.read(regData); dll != 0x0c {
		t.Errorf("restored divisor latch = %#x; want 0x0c", dll)
	}

	checkRefusals(t, "COM1", func() stateful { return newUARTRig().u }, saved, map[string]func([]byte) []byte{
		"a short buffer":  func(b []byte) []byte { return b[:5] },
		"a long buffer":   func(b []byte) []byte { return append(b, 0) },
		"17 bytes queued": func(b []byte) []byte { b[8] = 17; return b },
		"IER bits 4-7":    func(b []byte) []byte { b[0] = 0xf1; return b },
		"line level 2":    func(b []byte) []byte { b[len(b)-1] = 2; return b },
	})
}

func TestI8042State(t *testing.T) {
	a := NewI8042(func() {})
	a.Write(i8042Status, []byte{0xaa}) // self test: 0x55 waits
	a.Write(i8042Status, []byte{0x60}) // write config: waits for data
	saved := a.SaveState()

	b := NewI8042(func() { t.Error("restored i8042 reset the VM") })
	if err := b.RestoreState(saved); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*I8042{a, b} {
		k.Write(i8042Data, []byte{0x45}) // the pending command's data
		k.Write(i8042Status, []byte{0x20})
	}
	for i := range 4 {
		x, y := []byte{0}, []byte{0}
		off := uint64(i8042Data)
		if i%2 == 0 {
			off = i8042Status
		}
		a.Read(off, x)
		b.Read(off, y)
		if x[0] != y[0] {
			t.Errorf("read %d of port %d: restored %#x; original %#x", i, off, y[0], x[0])
		}
	}
	if got := b.SaveState(); !bytes.Equal(got, a.SaveState()) {
		t.Errorf("states diverged: %x; want %x", got, a.SaveState())
	}
	checkRefusals(t, "i8042", func() stateful { return NewI8042(func() {}) }, saved, map[string]func([]byte) []byte{
		"a short buffer":    func(b []byte) []byte { return b[:3] },
		"17 bytes buffered": func(b []byte) []byte { b[2] = 17; return b },
		"command 0x42":      func(b []byte) []byte { b[1] = 0x42; return b },
	})
}

func TestRTCState(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 7, 30, 15, 0, time.UTC)
	a, clock := rtcAt(t0)
	rtcSet(a, 0x40, 0x99) // CMOS RAM
	rtcSet(a, rtcRegB, regB24h|regBDM)
	rtcSet(a, rtcMin, 45) // the guest sets its clock: an offset from the host's
	a.Write(0, []byte{rtcSec})
	saved := a.SaveState()

	clock.advance(90 * time.Second) // the VM was saved and restored later
	b := NewRTC(clock.now)
	if err := b.RestoreState(saved); err != nil {
		t.Fatal(err)
	}
	if got := b.SaveState(); !bytes.Equal(got, saved) {
		t.Errorf("SaveState after RestoreState differs")
	}
	for _, idx := range []byte{rtcSec, rtcMin, rtcHour, rtcDay, rtcRegB, 0x40} {
		if x, y := rtcGet(a, idx), rtcGet(b, idx); x != y {
			t.Errorf("register %#x: restored RTC reads %#x; the original %#x", idx, y, x)
		}
	}
	if m := rtcGet(b, rtcMin); m != 46 {
		t.Errorf("minutes 90 s after the guest set 45 (at :15) = %d; want 46", m)
	}
	checkRefusals(t, "RTC", func() stateful { return NewRTC(clock.now) }, saved, map[string]func([]byte) []byte{
		"a short buffer": func(b []byte) []byte { return b[:10] },
		"index 0x80":     func(b []byte) []byte { b[0] = 0x80; return b },
		"2e9 ns":         func(b []byte) []byte { b[1+128+8+3] = 0x77; return b },
	})
}
