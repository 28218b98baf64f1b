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
