package devices

import (
	"testing"
	"time"
)

// fakeClock is a host clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// rtcAt returns an RTC whose host clock reads t.
func rtcAt(t time.Time) (*RTC, *fakeClock) {
	c := &fakeClock{t}
	return NewRTC(c.now), c
}

func rtcGet(r *RTC, idx byte) byte {
	r.Write(0, []byte{idx})
	b := []byte{0}
	r.Read(1, b)
	return b[0]
}

func rtcSet(r *RTC, idx, v byte) {
	r.Write(0, []byte{idx})
	r.Write(1, []byte{v})
}

// rtcTime reads the time registers in index order.
var rtcTimeRegs = []struct {
	name string
	idx  byte
}{
	{"seconds", 0x00}, {"minutes", 0x02}, {"hours", 0x04}, {"weekday", 0x06},
	{"day", 0x07}, {"month", 0x08}, {"year", 0x09}, {"century", 0x32},
}

func checkTime(t *testing.T, r *RTC, what string, want [8]byte) {
	t.Helper()
	for i, reg := range rtcTimeRegs {
		if got := rtcGet(r, reg.idx); got != want[i] {
			t.Errorf("%s: RTC %s (%#02x) = %#02x; want %#02x", what, reg.name, reg.idx, got, want[i])
		}
	}
}

// A Sunday afternoon, a quarter of a second into the second.
var rtcEpoch = time.Date(2024, time.March, 10, 14, 5, 7, 250e6, time.UTC)

func TestRTCModes(t *testing.T) {
	for _, c := range []struct {
		name string
		regB byte
		at   time.Time
		want [8]byte // sec, min, hour, weekday, day, month, year, century
	}{
		{"BCD 24h", 0x02, rtcEpoch, [8]byte{0x07, 0x05, 0x14, 0x01, 0x10, 0x03, 0x24, 0x20}},
		{"binary 24h", 0x06, rtcEpoch, [8]byte{7, 5, 14, 1, 10, 3, 24, 20}},
		{"BCD 12h PM", 0x00, rtcEpoch, [8]byte{0x07, 0x05, 0x82, 0x01, 0x10, 0x03, 0x24, 0x20}},
		{"binary 12h PM", 0x04, rtcEpoch.Add(9 * time.Hour), [8]byte{7, 5, 0x80 | 11, 1, 10, 3, 24, 20}},
		{"BCD 12h midnight", 0x00, time.Date(1999, 12, 31, 0, 0, 59, 0, time.UTC), [8]byte{0x59, 0x00, 0x12, 0x06, 0x31, 0x12, 0x99, 0x19}},
		{"BCD 12h noon", 0x00, time.Date(2100, 2, 28, 12, 30, 0, 0, time.UTC), [8]byte{0x00, 0x30, 0x92, 0x01, 0x28, 0x02, 0x00, 0x21}},
		{"binary 12h midnight", 0x04, time.Date(2000, 1, 1, 0, 59, 0, 0, time.UTC), [8]byte{0, 59, 12, 7, 1, 1, 0, 20}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := rtcAt(c.at)
			rtcSet(r, 0x0b, c.regB)
			checkTime(t, r, c.name, c.want)
		})
	}
}

func TestRTCPowerOnState(t *testing.T) {
	r, _ := rtcAt(rtcEpoch)
	for _, c := range []struct {
		name string
		idx  byte
		want byte
	}{
		{"register A: 32.768 kHz, 1024 Hz", 0x0a, 0x26},
		{"register B: 24h BCD", 0x0b, 0x02},
		{"register C: no flags", 0x0c, 0x00},
		{"register D: valid RAM and time", 0x0d, 0x80},
		{"CMOS RAM", 0x0e, 0x00},
	} {
		if got := rtcGet(r, c.idx); got != c.want {
			t.Errorf("%s: RTC[%#02x] = %#02x; want %#02x", c.name, c.idx, got, c.want)
		}
	}
}

// TestRTCSetTime sets the time the ways guests do and reads it back as
// the host clock moves on.
func TestRTCSetTime(t *testing.T) {
	type step struct {
		advance time.Duration
		want    [8]byte // sec, min, hour, weekday, day, month, year, century
	}
	// 2031-12-31 23:59:58, a Wednesday, in BCD.
	newYear := [][2]byte{{0x09, 0x31}, {0x08, 0x12}, {0x07, 0x31}, {0x06, 0x04}, {0x04, 0x23}, {0x02, 0x59}, {0x00, 0x58}, {0x32, 0x20}}
	before := [8]byte{0x58, 0x59, 0x23, 0x04, 0x31, 0x12, 0x31, 0x20}
	last := [8]byte{0x59, 0x59, 0x23, 0x04, 0x31, 0x12, 0x31, 0x20}
	after := [8]byte{0x00, 0x00, 0x00, 0x05, 0x01, 0x01, 0x32, 0x20}
	for _, c := range []struct {
		name  string
		set   func(r *RTC)
		steps []step
	}{
		{
			// drivers/rtc/rtc-mc146818-lib.c: SET, divider reset, the
			// registers, B restored, A restored. The first update comes
			// 500 ms after the divider is released.
			name: "Linux: SET and divider reset",
			set: func(r *RTC) {
				b, a := rtcGet(r, 0x0b), rtcGet(r, 0x0a)
				rtcSet(r, 0x0b, b|0x80)
				rtcSet(r, 0x0a, a|0x70)
				for _, w := range newYear {
					rtcSet(r, w[0], w[1])
				}
				rtcSet(r, 0x0b, b)
				rtcSet(r, 0x0a, a)
			},
			steps: []step{{0, before}, {400 * time.Millisecond, before}, {200 * time.Millisecond, last}, {time.Second, after}},
		},
		{
			// SET only (Linux on AMD, hwclock --directisa): the divider
			// chain ran on, so the phase (a quarter second in) is kept.
			name: "SET only",
			set: func(r *RTC) {
				rtcSet(r, 0x0b, 0x82)
				for _, w := range newYear {
					rtcSet(r, w[0], w[1])
				}
				rtcSet(r, 0x0b, 0x02)
			},
			steps: []step{{0, before}, {700 * time.Millisecond, before}, {100 * time.Millisecond, last}, {time.Second, after}},
		},
		{
			name: "writes while running take effect at once",
			set: func(r *RTC) {
				for _, w := range newYear {
					rtcSet(r, w[0], w[1])
				}
			},
			steps: []step{{0, before}, {800 * time.Millisecond, last}, {time.Second, after}},
		},
		{
			name: "binary mode",
			set: func(r *RTC) {
				rtcSet(r, 0x0b, 0x86)
				for _, w := range [][2]byte{{0x09, 31}, {0x08, 12}, {0x07, 31}, {0x04, 23}, {0x02, 59}, {0x00, 58}, {0x32, 20}} {
					rtcSet(r, w[0], w[1])
				}
				rtcSet(r, 0x0b, 0x06)
				rtcSet(r, 0x0b, 0x02) // read back in BCD
			},
			steps: []step{{0, before}, {800 * time.Millisecond, last}, {time.Second, after}},
		},
		{
			name: "12-hour mode, 11 PM",
			set: func(r *RTC) {
				rtcSet(r, 0x0b, 0x80)
				for _, w := range newYear {
					rtcSet(r, w[0], w[1])
				}
				rtcSet(r, 0x04, 0x91)
				rtcSet(r, 0x0b, 0x00)
				rtcSet(r, 0x0b, 0x02) // read back in 24-hour mode
			},
			steps: []step{{0, before}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, clk := rtcAt(rtcEpoch)
			c.set(r)
			for i, s := range c.steps {
				clk.advance(s.advance)
				checkTime(t, r, c.name+" step "+string(rune('0'+i)), s.want)
			}
		})
	}
}

// TestRTCStopped: while SET is on the time stands still at what was
// written, and UIP never reads set.
func TestRTCStopped(t *testing.T) {
	r, clk := rtcAt(rtcEpoch.Add(-250 * time.Millisecond)) // on the second
	clk.advance(time.Second - 100*time.Microsecond)
	if a := rtcGet(r, 0x0a); a&0x80 == 0 {
		t.Errorf("register A %v before an update = %#02x; want UIP", 100*time.Microsecond, a)
	}
	clk.advance(200 * time.Microsecond)
	if a := rtcGet(r, 0x0a); a != 0x26 {
		t.Errorf("register A after the update = %#02x; want 0x26 (UIP clear)", a)
	}
	rtcSet(r, 0x0b, 0x82)
	rtcSet(r, 0x00, 0x42)
	for range 3 {
		clk.advance(time.Second - 100*time.Microsecond)
		if a := rtcGet(r, 0x0a); a&0x80 != 0 {
			t.Errorf("register A with SET = %#02x; want UIP clear", a)
		}
		if s := rtcGet(r, 0x00); s != 0x42 {
			t.Errorf("seconds with SET = %#02x; want the written 0x42", s)
		}
		if s := rtcGet(r, 0x02); s != 0x05 {
			t.Errorf("minutes with SET = %#02x; want 0x05, where it stopped", s)
		}
	}
	rtcSet(r, 0x0a, 0xa6) // UIP is read-only
	if a := rtcGet(r, 0x0a); a != 0x26 {
		t.Errorf("register A after writing 0xa6 = %#02x; want 0x26", a)
	}
}

func TestRTCRegisterC(t *testing.T) {
	for _, c := range []struct {
		name    string
		setup   [][2]byte // index, value
		advance time.Duration
		want    byte
	}{
		{"nothing happened", [][2]byte{{0x0a, 0x20}}, 100 * time.Millisecond, 0x00},
		{"an update, UIE off", [][2]byte{{0x0a, 0x20}}, time.Second, 0x10},
		{"an update, UIE on", [][2]byte{{0x0a, 0x20}, {0x0b, 0x12}}, time.Second, 0x90},
		{"periodic tick (power-on 1024 Hz), PIE off", nil, 2 * time.Millisecond, 0x40},
		{"periodic tick, PIE on", [][2]byte{{0x0a, 0x26}, {0x0b, 0x42}}, 2 * time.Millisecond, 0xc0},
		{"periodic off", [][2]byte{{0x0a, 0x20}, {0x0b, 0x42}}, 2 * time.Millisecond, 0x00},
		{"periodic 2 Hz not yet", [][2]byte{{0x0a, 0x2f}}, 400 * time.Millisecond, 0x00},
		{"alarm at 14:05:09, AIE on", [][2]byte{{0x01, 0x09}, {0x03, 0x05}, {0x05, 0x14}, {0x0b, 0x22}, {0x0a, 0x20}}, 3 * time.Second, 0xb0},
		{"alarm at 14:05:09, AIE off", [][2]byte{{0x01, 0x09}, {0x03, 0x05}, {0x05, 0x14}, {0x0a, 0x20}}, 3 * time.Second, 0x30},
		{"alarm not reached", [][2]byte{{0x01, 0x20}, {0x03, 0x05}, {0x05, 0x14}, {0x0b, 0x22}, {0x0a, 0x20}}, 3 * time.Second, 0x10},
		{"alarm every second (don't care)", [][2]byte{{0x01, 0xc0}, {0x03, 0xff}, {0x05, 0xc0}, {0x0b, 0x22}, {0x0a, 0x20}}, time.Second, 0xb0},
		{"alarm a day later", [][2]byte{{0x01, 0x06}, {0x03, 0x05}, {0x05, 0x14}, {0x0a, 0x20}}, 30 * time.Hour, 0x30},
		{"stopped: no update", [][2]byte{{0x0b, 0x92}}, 3 * time.Second, 0x00},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, clk := rtcAt(rtcEpoch)
			for _, w := range c.setup {
				rtcSet(r, w[0], w[1])
			}
			clk.advance(c.advance)
			if got := rtcGet(r, 0x0c); got != c.want {
				t.Errorf("register C = %#02x; want %#02x", got, c.want)
			}
			if got := rtcGet(r, 0x0c); got != 0 {
				t.Errorf("register C read again = %#02x; want 0 (reading clears it)", got)
			}
			rtcSet(r, 0x0c, 0xff)
			rtcSet(r, 0x0d, 0x00)
			if c, d := rtcGet(r, 0x0c), rtcGet(r, 0x0d); c != 0 || d != 0x80 {
				t.Errorf("registers C, D after writing them = %#02x, %#02x; want 0, 0x80 (read-only)", c, d)
			}
		})
	}
}

func TestRTCRAMAndPorts(t *testing.T) {
	r, _ := rtcAt(rtcEpoch)
	for i := byte(0x0e); i < 0x80; i++ {
		if i != 0x32 {
			rtcSet(r, i, i^0x5a)
		}
	}
	for i := byte(0x0e); i < 0x80; i++ {
		if got := rtcGet(r, i); i != 0x32 && got != i^0x5a {
			t.Errorf("CMOS RAM[%#02x] = %#02x; want %#02x", i, got, i^0x5a)
		}
	}
	for _, c := range []struct {
		name string
		idx  byte
		want byte
	}{
		{"NMI mask bit ignored (0x8d is D)", 0x8d, 0x80},
		{"index 0xff is RAM 0x7f", 0xff, 0x7f ^ 0x5a},
		{"index 0xb2 is the century", 0xb2, 0x20},
	} {
		if got := rtcGet(r, c.idx); got != c.want {
			t.Errorf("%s: RTC[%#02x] = %#02x; want %#02x", c.name, c.idx, got, c.want)
		}
	}

	b := []byte{0}
	r.Read(0, b)
	if b[0] != 0xff {
		t.Errorf("read of the index port = %#02x; want 0xff (write-only)", b[0])
	}
	r.Write(0, []byte{0x20, 0xab}) // a 16-bit out: index, then data
	if got := rtcGet(r, 0x20); got != 0xab {
		t.Errorf("RAM[0x20] after a 16-bit write = %#02x; want 0xab", got)
	}
	r.Write(0, []byte{0x0d})
	w := []byte{0, 0, 0, 0}
	r.Read(0, w) // a 32-bit in from 0x70: 0x70, 0x71, then beyond
	if w[0] != 0xff || w[1] != 0x80 || w[2] != 0xff || w[3] != 0xff {
		t.Errorf("32-bit read at 0x70 = % x; want ff 80 ff ff", w)
	}
	r.Write(5, []byte{1, 2}) // beyond the device: ignored
	r.Read(7, w)
	r.Write(0, nil)
	r.Read(1, nil)
}

// FuzzRTC drives the RTC with arbitrary port writes and reads, moving the
// host clock: it must never panic.
func FuzzRTC(f *testing.F) {
	f.Add([]byte{0, 0x0b, 1, 0x80, 0, 0x32, 1, 0xff, 0, 0x09, 1, 0x99, 0, 0x0b, 1, 0x02, 2, 0, 0, 0x0c, 3, 1})
	f.Add([]byte{0, 0x0b, 1, 0x86, 0, 0x08, 1, 0x00, 0, 0x07, 1, 0x00, 0, 0x0b, 1, 0x06, 0, 0x0a, 1, 0x0f, 2, 0xff})
	f.Fuzz(func(t *testing.T, ops []byte) {
		r, clk := rtcAt(rtcEpoch)
		for len(ops) >= 2 {
			op, v := ops[0], ops[1]
			ops = ops[2:]
			switch op % 4 {
			case 0:
				r.Write(0, []byte{v})
			case 1:
				r.Write(1, []byte{v})
			case 2:
				clk.advance(time.Duration(v) * 37 * time.Minute)
			case 3:
				b := []byte{0}
				r.Read(uint64(v%3), b)
			}
		}
	})
}
