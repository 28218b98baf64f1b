package devices

import (
	"sync"
	"time"
)

// RTC is an MC146818-compatible CMOS real-time clock with its 128 bytes
// of CMOS RAM: the index register at port 0x70 (offset 0; bit 7, the NMI
// mask, is ignored) and the data register at 0x71 (offset 1).
//
// The clock is the host's (UTC) plus an offset. A guest that stops it
// (register B's SET, or register A's divider held in reset) and writes
// the time registers moves the offset when it restarts the clock, so
// `hwclock -w` sticks; a write to a time register while the clock runs
// takes effect at once. As on the chip, the first update after the
// divider is released comes half a second later, and one after SET is
// cleared keeps the running phase. UIP (register A bit 7) reads set only
// in the 244 µs before each update, never while the clock is stopped.
//
// No interrupts: IRQ 8 is never raised. The PIE, AIE and UIE enables are
// stored, and register C's PF, AF and UF (and IRQF from them) are set by
// what happened since C was last read, which clears it; but nothing
// signals them. Alarms are compared per second; there is no periodic
// timer. Linux's rtc-cmos then runs without alarms (the ACPI tables
// describe the RTC without an interrupt), and hwclock polls. Booted with
// ACPI off, Linux assumes IRQ 8 instead, and its RTC alarms and update
// interrupts never come.
type RTC struct {
	now func() time.Time // the host clock

	mu sync.Mutex
	// The fields below are guarded by mu.
	index byte
	// cmos holds the registers and CMOS RAM. The time registers (see
	// timeRegs) hold the stopped clock's time while it is stopped; while
	// it runs they are computed on each read.
	cmos [rtcCMOSSize]byte
	// offSec and offNsec (0 <= offNsec < 1e9) are the guest clock minus
	// the host clock; seconds apart so any year the registers can hold
	// fits.
	offSec, offNsec int64
	// lastSec is the guest second up to which register C's UF and AF are
	// accounted; lastC the host time up to which PF is.
	lastSec int64
	lastC   time.Time
}

const (
	rtcCMOSSize = 128

	// Register indexes.
	rtcSec      = 0x00
	rtcSecAlarm = 0x01
	rtcMin      = 0x02
	rtcMinAlarm = 0x03
	rtcHour     = 0x04
	rtcHourAlrm = 0x05
	rtcWeekday  = 0x06
	rtcDay      = 0x07
	rtcMonth    = 0x08
	rtcYear     = 0x09
	rtcRegA     = 0x0a
	rtcRegB     = 0x0b
	rtcRegC     = 0x0c
	rtcRegD     = 0x0d
	rtcCentury  = 0x32 // the PC's century byte; the ACPI FADT names it

	regAUIP     = 1 << 7
	regADivMask = 0x70 // DV2-0: 010 is the 32.768 kHz time base; 11x resets
	regADivRun  = 0x20 // highest divider setting that keeps time (as QEMU)
	regBSet     = 1 << 7
	regBPIE     = 1 << 6
	regBAIE     = 1 << 5
	regBUIE     = 1 << 4
	regBDM      = 1 << 2 // binary, not BCD
	regB24h     = 1 << 1
	regCIRQF    = 1 << 7
	regCPF      = 1 << 6
	regCAF      = 1 << 5
	regCUF      = 1 << 4
	regDVRT     = 1 << 7 // valid RAM and time

	alarmDontCare = 0xc0 // an alarm byte >= this matches any value
	hour12PM      = 0x80 // 12-hour mode: the hour's PM bit

	// uipHold is how long before an update UIP reads set: 8 cycles of
	// the 32.768 kHz clock, 244 µs.
	uipHold = 8 * time.Second / 32768
)

// timeRegs are the registers that hold the date and time.
var timeRegs = [...]byte{rtcSec, rtcMin, rtcHour, rtcWeekday, rtcDay, rtcMonth, rtcYear, rtcCentury}

// NewRTC returns an RTC reading the host clock through now (time.Now if
// nil), in its power-on state: 32.768 kHz time base with a 1024 Hz
// periodic rate, 24-hour BCD mode, valid RAM and time.
func NewRTC(now func() time.Time) *RTC {
	if now == nil {
		now = time.Now
	}
	r := &RTC{now: now}
	r.cmos[rtcRegA] = regADivRun | 0x06
	r.cmos[rtcRegB] = regB24h
	r.cmos[rtcRegD] = regDVRT
	t := now()
	r.lastSec, r.lastC = r.guest(t).Unix(), t
	return r
}

// Read returns 0xff at the index port (it is write-only) and the indexed
// register or RAM byte at the data port.
func (r *RTC) Read(off uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range data {
		data[i] = 0xff
		if off+uint64(i) == 1 {
			data[i] = r.readData()
		}
	}
}

// Write sets the index (port 0x70) or writes the indexed register or
// RAM byte (port 0x71). A wider access covers both ports in turn.
func (r *RTC) Write(off uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, v := range data {
		switch off + uint64(i) {
		case 0:
			r.index = v &^ 0x80 // bit 7 masks NMIs: nothing to do here
		case 1:
			r.writeData(v)
		}
	}
}

// running reports whether the clock keeps time: SET clear and the
// divider not held in reset. Caller holds mu.
func (r *RTC) running() bool {
	return r.cmos[rtcRegB]&regBSet == 0 && r.cmos[rtcRegA]&regADivMask <= regADivRun
}

// guest is the guest's clock at host time t. Caller holds mu, or is NewRTC.
func (r *RTC) guest(t time.Time) time.Time {
	t = t.Add(time.Duration(r.offNsec))
	return time.Unix(t.Unix()+r.offSec, int64(t.Nanosecond())).UTC()
}

// setGuest makes the guest's clock read g at host time t. Caller holds mu.
func (r *RTC) setGuest(g, t time.Time) {
	d := int64(g.Nanosecond()) - int64(t.Nanosecond())
	sec := g.Unix() - t.Unix()
	if d < 0 {
		d += int64(time.Second)
		sec--
	}
	r.offSec, r.offNsec = sec, d
	r.lastSec = g.Unix() // a jump is not a run of updates
}

// readData reads register r.index. Caller holds mu.
func (r *RTC) readData() byte {
	i := r.index
	switch {
	case isTimeReg(i) && r.running():
		var regs [rtcCMOSSize]byte
		encodeTime(&regs, r.guest(r.now()), r.cmos[rtcRegB])
		return regs[i]
	case i == rtcRegA:
		a := r.cmos[rtcRegA] &^ regAUIP
		if r.running() && r.guest(r.now()).Nanosecond() >= int(time.Second-uipHold) {
			a |= regAUIP
		}
		return a
	case i == rtcRegC:
		c := r.regC()
		r.cmos[rtcRegC] = 0
		return c
	}
	return r.cmos[i]
}

// writeData writes register r.index. Caller holds mu.
func (r *RTC) writeData(v byte) {
	i := r.index
	t := r.now()
	switch {
	case isTimeReg(i) && r.running():
		// Takes effect at once, keeping the phase within the second.
		g := r.guest(t)
		var regs [rtcCMOSSize]byte
		encodeTime(&regs, g, r.cmos[rtcRegB])
		regs[i] = v
		r.setGuest(decodeTime(&regs, r.cmos[rtcRegB]).Add(time.Duration(g.Nanosecond())), t)
	case i == rtcRegA:
		r.setControl(t, rtcRegA, v&^regAUIP)
	case i == rtcRegB:
		if v&regBSet != 0 {
			v &^= regBUIE // setting SET clears UIE, as on the chip
		}
		r.setControl(t, rtcRegB, v)
	case i == rtcRegC || i == rtcRegD:
		// Read-only.
	default:
		r.cmos[i] = v
	}
}

// setControl writes register A or B, stopping or restarting the clock
// if that changes. Caller holds mu.
func (r *RTC) setControl(t time.Time, reg, v byte) {
	r.accumulate() // what happened while it ran stays visible in C
	was := r.running()
	g := r.guest(t)
	divWasReset := r.cmos[rtcRegA]&regADivMask > regADivRun
	r.cmos[reg] = v
	switch now := r.running(); {
	case was && !now:
		// Stopped: the time registers hold the time it stopped at, in the
		// mode register B now says.
		encodeTime(&r.cmos, g, r.cmos[rtcRegB])
	case !was && now:
		var phase time.Duration
		if divWasReset && r.cmos[rtcRegA]&regADivMask <= regADivRun {
			phase = time.Second / 2 // the first update comes 500 ms after the divider is released
		} else {
			phase = time.Duration(g.Nanosecond()) // the divider chain kept running under SET
		}
		r.setGuest(decodeTime(&r.cmos, r.cmos[rtcRegB]).Add(phase), t)
		r.lastC = t
	}
}

func isTimeReg(i byte) bool {
	for _, t := range timeRegs {
		if i == t {
			return true
		}
	}
	return false
}

// accumulate sets register C's flags for what happened since they were
// last accounted: UF for an update, AF for an update at the alarm time,
// PF for a periodic-rate tick. Caller holds mu.
func (r *RTC) accumulate() {
	if !r.running() {
		return
	}
	t := r.now()
	cur := r.guest(t).Unix()
	if cur > r.lastSec {
		r.cmos[rtcRegC] |= regCUF
		// Every second since the last check; a day covers every time an
		// alarm can name.
		for s := max(r.lastSec+1, cur-86400+1); s <= cur; s++ {
			if r.alarmAt(s) {
				r.cmos[rtcRegC] |= regCAF
				break
			}
		}
		r.lastSec = cur
	}
	if p := r.period(); p > 0 && t.Sub(r.lastC) >= p {
		r.cmos[rtcRegC] |= regCPF
	}
	r.lastC = t
}

// regC is register C: the flags, and IRQF if one of them is enabled in
// register B. Caller holds mu.
func (r *RTC) regC() byte {
	r.accumulate()
	c, b := r.cmos[rtcRegC], r.cmos[rtcRegB]
	if c&regCPF != 0 && b&regBPIE != 0 || c&regCAF != 0 && b&regBAIE != 0 || c&regCUF != 0 && b&regBUIE != 0 {
		c |= regCIRQF
	}
	return c
}

// alarmAt reports whether the alarm registers match the guest second s
// (Unix time). Caller holds mu.
func (r *RTC) alarmAt(s int64) bool {
	var regs [rtcCMOSSize]byte
	encodeTime(&regs, time.Unix(s, 0).UTC(), r.cmos[rtcRegB])
	for _, p := range [][2]byte{{rtcSecAlarm, rtcSec}, {rtcMinAlarm, rtcMin}, {rtcHourAlrm, rtcHour}} {
		if a := r.cmos[p[0]]; a < alarmDontCare && a != regs[p[1]] {
			return false
		}
	}
	return true
}

// period is the periodic interrupt rate's period, 0 if off. Caller holds mu.
func (r *RTC) period() time.Duration {
	rs := r.cmos[rtcRegA] & 0x0f
	switch {
	case rs == 0:
		return 0
	case rs < 3:
		rs += 7 // 1 and 2 are 256 and 128 Hz on the 32.768 kHz time base
	}
	return time.Duration(int64(time.Second) << (rs - 1) / 32768)
}

// encodeTime writes t into regs' time registers in the mode register B
// value b says (BCD or binary, 24 or 12 hours).
func encodeTime(regs *[rtcCMOSSize]byte, t time.Time, b byte) {
	enc := func(v int) byte {
		if b&regBDM != 0 {
			return byte(v)
		}
		return byte(v/10<<4 | v%10)
	}
	h := t.Hour()
	var hour byte
	if b&regB24h != 0 {
		hour = enc(h)
	} else {
		h12 := h % 12
		if h12 == 0 {
			h12 = 12
		}
		hour = enc(h12)
		if h >= 12 {
			hour |= hour12PM
		}
	}
	regs[rtcSec] = enc(t.Second())
	regs[rtcMin] = enc(t.Minute())
	regs[rtcHour] = hour
	regs[rtcWeekday] = enc(int(t.Weekday()) + 1) // Sunday is 1
	regs[rtcDay] = enc(t.Day())
	regs[rtcMonth] = enc(int(t.Month()))
	regs[rtcYear] = enc(t.Year() % 100)
	regs[rtcCentury] = enc(t.Year() / 100 % 100)
}

// decodeTime reads the time in regs' time registers in register B value
// b's mode. Whatever the guest wrote decodes to some time: out-of-range
// fields carry over as time.Date normalizes them, and the weekday
// follows from the date.
func decodeTime(regs *[rtcCMOSSize]byte, b byte) time.Time {
	dec := func(v byte) int {
		if b&regBDM != 0 {
			return int(v)
		}
		return int(v>>4)*10 + int(v&0x0f)
	}
	hv := regs[rtcHour]
	var h int
	if b&regB24h != 0 {
		h = dec(hv)
	} else {
		h = dec(hv&^hour12PM) % 12
		if hv&hour12PM != 0 {
			h += 12
		}
	}
	year := dec(regs[rtcCentury])*100 + dec(regs[rtcYear])
	return time.Date(year, time.Month(dec(regs[rtcMonth])), dec(regs[rtcDay]),
		h, dec(regs[rtcMin]), dec(regs[rtcSec]), 0, time.UTC)
}
