package devices

import (
	"bytes"
	"testing"
)

type uartRig struct {
	u      *UART
	out    bytes.Buffer
	levels []bool
	spaces int
}

func newUARTRig() *uartRig {
	r := &uartRig{}
	r.u = NewUART(&r.out, func(l bool) { r.levels = append(r.levels, l) })
	r.u.OnSpace(func() { r.spaces++ })
	return r
}

func (r *uartRig) read(off uint64) byte {
	b := []byte{0}
	r.u.Read(off, b)
	return b[0]
}

func (r *uartRig) write(off uint64, v byte) { r.u.Write(off, []byte{v}) }

func TestUARTTransmit(t *testing.T) {
	r := newUARTRig()
	for _, c := range []byte("hi\n") {
		if lsr := r.read(regLSR); lsr&lsrTHRE == 0 {
			t.Fatalf("LSR = %#x; want THRE set before each byte", lsr)
		}
		r.write(regData, c)
	}
	if r.out.String() != "hi\n" {
		t.Errorf("output = %q; want %q", r.out.String(), "hi\n")
	}
	if len(r.levels) != 0 {
		t.Errorf("interrupt line changed %v with interrupts disabled", r.levels)
	}
}

func TestUARTDivisorLatch(t *testing.T) {
	r := newUARTRig()
	r.write(regLCR, lcrDLAB|3)
	r.write(regData, 0x01)
	r.write(regIER, 0x00)
	r.write(regLCR, 3)
	r.write(regData, 'A')
	r.write(regLCR, lcrDLAB|3)
	if got := r.read(regData); got != 0x01 {
		t.Errorf("DLL = %#x; want 0x01", got)
	}
	if r.out.String() != "A" {
		t.Errorf("output = %q; DLAB writes must not transmit", r.out.String())
	}
	r.write(regSCR, 0x5a)
	if got := r.read(regSCR); got != 0x5a {
		t.Errorf("SCR = %#x; want 0x5a", got)
	}
}

// TestUARTTHREInterrupt follows Linux's 8250 driver: enabling THRI with an
// empty THR raises the line; reading IIR acknowledges it; a write
// raises it again.
func TestUARTTHREInterrupt(t *testing.T) {
	r := newUARTRig()
	r.write(regMCR, mcrOut2)
	r.write(regIER, ierTHRI)
	if iir := r.read(regIIR); iir&0x0f != iirTHRI {
		t.Fatalf("IIR = %#x; want THRI pending", iir)
	}
	if iir := r.read(regIIR); iir&0x0f != iirNone {
		t.Errorf("IIR after acknowledge = %#x; want none", iir)
	}
	r.write(regData, 'x')
	if iir := r.read(regIIR); iir&0x0f != iirTHRI {
		t.Errorf("IIR after a write = %#x; want THRI again", iir)
	}
	want := []bool{true, false, true, false}
	if len(r.levels) != len(want) {
		t.Fatalf("line levels = %v; want %v", r.levels, want)
	}
	for i := range want {
		if r.levels[i] != want[i] {
			t.Errorf("line levels = %v; want %v", r.levels, want)
		}
	}
}

func TestUARTReceiveBackpressure(t *testing.T) {
	r := newUARTRig()
	r.write(regMCR, mcrOut2)
	r.write(regIER, ierRDI)
	in := bytes.Repeat([]byte("0123456789"), 3)
	n := r.u.Receive(in)
	if n != uartFIFOSize || r.u.Room() != 0 {
		t.Fatalf("Receive(30 bytes) = %d, room %d; want %d, 0", n, r.u.Room(), uartFIFOSize)
	}
	if iir := r.read(regIIR); iir&0x0f != iirRDI {
		t.Errorf("IIR = %#x; want RDI", iir)
	}
	var got []byte
	for r.read(regLSR)&lsrDR != 0 {
		got = append(got, r.read(regData))
	}
	if !bytes.Equal(got, in[:n]) {
		t.Errorf("guest read %q; want %q", got, in[:n])
	}
	if r.spaces != 1 {
		t.Errorf("OnSpace called %d times; want once (when the full FIFO drained)", r.spaces)
	}
	if len(r.levels) != 2 || !r.levels[0] || r.levels[1] {
		t.Errorf("line levels = %v; want [true false]", r.levels)
	}
	// The rest arrives after the guest made room: nothing was dropped.
	if n2 := r.u.Receive(in[n:]); n2 != len(in)-n {
		t.Errorf("second Receive = %d; want %d", n2, len(in)-n)
	}
}

// TestUARTFIFOClearMakesSpace: the guest's driver clears the RX FIFO
// when a port opens (FCR bit 1). If the FIFO was full, the host's input
// was paused waiting for space, and must be told, or typing stalls for
// good.
func TestUARTFIFOClearMakesSpace(t *testing.T) {
	r := newUARTRig()
	if n := r.u.Receive(bytes.Repeat([]byte{'x'}, 20)); n != uartFIFOSize {
		t.Fatalf("Receive = %d; want %d", n, uartFIFOSize)
	}
	r.write(regIIR, 0x07) // FCR: enable, clear RX and TX
	if r.u.Room() != uartFIFOSize {
		t.Errorf("room after clearing = %d; want %d", r.u.Room(), uartFIFOSize)
	}
	if r.spaces != 1 {
		t.Errorf("OnSpace called %d times after clearing a full FIFO; want 1", r.spaces)
	}
	r.write(regIIR, 0x07) // clearing an empty FIFO frees nothing new
	if r.spaces != 1 {
		t.Errorf("OnSpace called %d times after clearing an empty FIFO; want still 1", r.spaces)
	}
}

func TestUARTOut2GatesInterrupt(t *testing.T) {
	r := newUARTRig()
	r.write(regIER, ierRDI)
	r.u.Receive([]byte("a"))
	if len(r.levels) != 0 {
		t.Errorf("line raised %v without OUT2", r.levels)
	}
	r.write(regMCR, mcrOut2)
	if len(r.levels) != 1 || !r.levels[0] {
		t.Errorf("line levels = %v after OUT2; want [true]", r.levels)
	}
}

func TestUARTLoopback(t *testing.T) {
	r := newUARTRig()
	r.write(regMCR, mcrLoop)
	r.write(regData, 'L')
	if got := r.read(regData); got != 'L' || r.out.Len() != 0 {
		t.Errorf("loopback read %q, output %q; want 'L' and nothing sent", got, r.out.String())
	}
}

// uartStep is one register access of a replayed driver sequence: a
// write of v, or a read whose value must be v on the bits in mask (0
// checks nothing); line is the interrupt line's level after the access.
type uartStep struct {
	op   byte // 'r' or 'w'
	off  uint64
	v    byte
	mask byte
	line bool
	what string
}

func (r *uartRig) replay(t *testing.T, steps []uartStep) {
	t.Helper()
	for i, s := range steps {
		switch s.op {
		case 'w':
			r.write(s.off, s.v)
		case 'r':
			if got := r.read(s.off); got&s.mask != s.v&s.mask {
				t.Errorf("step %d (%s): read reg %d = %#02x; want %#02x (mask %#02x)", i, s.what, s.off, got, s.v, s.mask)
			}
		}
		if line := len(r.levels) > 0 && r.levels[len(r.levels)-1]; line != s.line {
			t.Errorf("step %d (%s): interrupt line %v; want %v (changes so far %v)", i, s.what, line, s.line, r.levels)
		}
	}
	for i := 1; i < len(r.levels); i++ {
		if r.levels[i] == r.levels[i-1] {
			t.Errorf("interrupt line set to %v twice in a row (changes %v): an edge-triggered pin needs a change per interrupt", r.levels[i], r.levels)
		}
	}
}

// Linux's 8250 register sequences, as Debian's 6.1 kernel performs them
// (recorded under vmm): serial8250_do_startup's THRE and TXEN tests, the
// interrupt-driven TX path, and the polled console write around it.
var (
	// serial8250_do_startup from a port the console set up (MCR=DTR,
	// IER=0): clear the FIFOs and interrupts, the THRE test (OUT2 still
	// off: no interrupt), OUT2 on, the TXEN test (a THRE interrupt at
	// once, acknowledged by the IIR read), IER shadow RLSI|RDI, termios.
	linuxStartup = []uartStep{
		{'w', regMCR, 0x01, 0, false, "console setup: DTR"},
		{'w', regIIR, 0x01, 0, false, "clear_fifos: FCR enable"},
		{'w', regIIR, 0x07, 0, false, "clear_fifos: FCR clear"},
		{'w', regIIR, 0x00, 0, false, "clear_fifos: FCR off"},
		{'r', regLSR, lsrTHRE | lsrTEMT, 0xff, false, "clear LSR"},
		{'r', regData, 0, 0, false, "clear RX"},
		{'r', regIIR, iirNone, 0xff, false, "clear IIR"},
		{'r', regMSR, 0xb0, 0xff, false, "clear MSR"},
		{'r', regLSR, lsrTHRE, lsrTHRE, false, "THRE test: wait_for_xmitr"},
		{'w', regIER, ierTHRI, 0, false, "THRE test: THRI on, OUT2 off"},
		{'r', regIIR, iirTHRI, 0xff, false, "THRE test: iir1 has THRI"},
		{'w', regIER, 0, 0, false, "THRE test: THRI off"},
		{'w', regIER, ierTHRI, 0, false, "THRE test: THRI on again"},
		{'r', regIIR, iirTHRI, 0xff, false, "THRE test: THRE reasserted (else UART_BUG_THRE)"},
		{'w', regIER, 0, 0, false, "THRE test: done"},
		{'w', regLCR, 0x03, 0, false, "8N1"},
		{'w', regMCR, 0x09, 0, false, "OUT2 on, nothing pending"},
		{'w', regIER, ierTHRI, 0, true, "TXEN test: THRI on raises the line"},
		{'r', regLSR, lsrTEMT, lsrTEMT, true, "TXEN test: LSR"},
		{'r', regIIR, iirTHRI, 0x0f, false, "TXEN test: THRI (else UART_BUG_TXEN); the read acknowledges it"},
		{'w', regIER, 0, 0, false, "TXEN test: done"},
		{'r', regLSR, 0, 0, false, "clear LSR"},
		{'r', regData, 0, 0, false, "clear RX"},
		{'r', regIIR, iirNone, 0x0f, false, "clear IIR"},
		{'r', regMSR, 0, 0, false, "clear MSR"},
		{'w', regIER, ierRLSI | ierRDI, 0, false, "set_termios: IER shadow"},
		{'w', regLCR, 0x93, 0, false, "divisor latch"},
		{'w', regData, 0x0c, 0, false, "DLL"},
		{'w', regIER, 0x00, 0, false, "DLM"},
		{'w', regLCR, 0x13, 0, false, "latch off"},
		{'w', regIIR, 0x01, 0, false, "FCR enable"},
		{'w', regIIR, 0x81, 0, false, "FCR trigger"},
		{'w', regMCR, 0x0b, 0, false, "DTR|RTS|OUT2"},
	}
	// __start_tx sets THRI: the line rises. serial8250_interrupt reads
	// IIR (THRI; the line falls), LSR and MSR, and tx_chars loads up to
	// 16 bytes: the first makes THR empty again, a new edge. The next
	// pass sends the rest and __stop_tx clears THRI (the line falls);
	// the pass after finds nothing pending.
	linuxTX = func() []uartStep {
		s := []uartStep{{'w', regIER, ierRLSI | ierRDI | ierTHRI, 0, true, "__start_tx: THRI on"}}
		handler := func(n int, last bool) {
			s = append(s,
				uartStep{'r', regIIR, iirFIFO | iirTHRI, 0xff, false, "handle_irq: IIR"},
				uartStep{'r', regLSR, lsrTHRE | lsrTEMT, 0xff, false, "handle_irq: LSR"},
				uartStep{'r', regMSR, 0, 0, false, "handle_irq: MSR"})
			for i := 0; i < n; i++ {
				s = append(s, uartStep{'w', regData, 'a' + byte(i), 0, true, "tx_chars: THR"})
			}
			if last {
				s = append(s, uartStep{'w', regIER, ierRLSI | ierRDI, 0, false, "__stop_tx: THRI off"})
			}
		}
		handler(16, false)
		handler(4, true)
		return append(s, uartStep{'r', regIIR, iirFIFO | iirNone, 0xff, false, "next pass: nothing pending"})
	}()
	// serial8250_console_write while the tty is transmitting: save IER,
	// clear it (the line falls), poll LSR and write, restore IER (THRI
	// re-enabled with THR empty: the THRE interrupt is asserted again).
	linuxConsoleWriteDuringTX = []uartStep{
		{'w', regIER, ierRLSI | ierRDI | ierTHRI, 0, true, "__start_tx: THRI on"},
		{'r', regIER, ierRLSI | ierRDI | ierTHRI, 0xff, true, "console_write: save IER"},
		{'w', regIER, 0, 0, false, "console_write: clear IER"},
		{'r', regLSR, lsrTHRE, lsrTHRE, false, "console_write: wait THRE"},
		{'w', regData, 'k', 0, false, "console_write: putchar"},
		{'r', regLSR, lsrTHRE | lsrTEMT, lsrTHRE | lsrTEMT, false, "console_write: wait both empty"},
		{'w', regIER, ierRLSI | ierRDI | ierTHRI, 0, true, "console_write: restore IER: THRE again"},
		{'r', regIIR, iirFIFO | iirTHRI, 0xff, false, "handle_irq: IIR"},
	}
)

// TestUARTLinuxSequences replays Linux's register sequences and checks
// the IIR values it reads and every change of the interrupt line: one
// rise per interrupt, a fall whenever the condition clears, so an
// edge-triggered IOAPIC pin (ISA IRQ 4 under ACPI) sees each one.
func TestUARTLinuxSequences(t *testing.T) {
	cat := func(parts ...[]uartStep) []uartStep {
		var all []uartStep
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	tests := []struct {
		name  string
		steps []uartStep
		out   string
	}{
		{"startup", linuxStartup, ""},
		{"startup then TX", cat(linuxStartup, linuxTX), "abcdefghijklmnopabcd"},
		{"startup, TX twice", cat(linuxStartup, linuxTX, linuxTX), "abcdefghijklmnopabcdabcdefghijklmnopabcd"},
		{"console write during TX", cat(linuxStartup, linuxConsoleWriteDuringTX), "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newUARTRig()
			r.replay(t, tt.steps)
			if r.out.String() != tt.out {
				t.Errorf("output = %q; want %q", r.out.String(), tt.out)
			}
		})
	}
}

// TestUARTStats: Stats shows what waits, the interrupt asked for and
// the counters, and looking does not acknowledge anything.
func TestUARTStats(t *testing.T) {
	r := newUARTRig()
	r.write(regMCR, mcrOut2)
	r.write(regIER, ierRDI|ierTHRI) // THR empty: THRE interrupt
	r.write(regData, 'a')
	r.u.Receive([]byte("xyz"))
	s := r.u.Stats()
	want := UARTStats{IER: ierRDI | ierTHRI, IIR: iirRDI, MCR: mcrOut2, RXFIFO: 3, THREPending: true,
		Level: true, Raised: 1, Received: 3, Sent: 1}
	if s != want {
		t.Fatalf("Stats() = %+v; want %+v", s, want)
	}
	if again := r.u.Stats(); again != s {
		t.Errorf("Stats() changed the UART: %+v, then %+v", s, again)
	}
	for range 3 {
		r.read(regData)
	}
	if iir := r.read(regIIR); iir&0x0f != iirTHRI {
		t.Fatalf("IIR = %#x; want THRI once RX is empty", iir)
	}
	if s := r.u.Stats(); s.Level || s.RXFIFO != 0 || s.THREPending || s.Raised != 1 {
		t.Errorf("Stats() after reading RX and IIR = %+v; want the line low, nothing pending, one rise", s)
	}
}
