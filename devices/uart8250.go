package devices

import (
	"io"
	"sync"
)

// UART is a 16550A-compatible serial port (COM1): enough of the chip for
// Linux's 8250 driver and polled firmware-style output. Transmission is
// instantaneous (THR is always empty); received bytes wait in a FIFO
// whose space the host side asks for before reading its backend, so
// input is never dropped.
type UART struct {
	out   io.Writer  // must not block
	irq   func(bool) // sets the interrupt line level
	space func()     // called when the RX FIFO has room again

	mu sync.Mutex
	// The fields below are guarded by mu.
	ier, lcr, mcr, scr, fcr byte
	dll, dlm                byte
	lsrErr                  byte
	rx                      []byte
	threPending             bool   // THR-empty interrupt not yet acknowledged
	level                   bool   // current interrupt line level
	raised                  uint64 // times the line went high
	received, sent          uint64 // bytes into the RX FIFO, bytes out of THR
}

// uartFIFOSize is the 16550A's receive FIFO depth.
const uartFIFOSize = 16

// Register offsets and bits (National Semiconductor PC16550D).
const (
	regData = 0 // RBR/THR, DLL when DLAB
	regIER  = 1 // DLM when DLAB
	regIIR  = 2 // FCR on write
	regLCR  = 3
	regMCR  = 4
	regLSR  = 5
	regMSR  = 6
	regSCR  = 7

	ierRDI  = 1 << 0
	ierTHRI = 1 << 1
	ierRLSI = 1 << 2

	iirNone = 0x01
	iirTHRI = 0x02
	iirRDI  = 0x04
	iirRLSI = 0x06
	iirFIFO = 0xc0

	lcrDLAB = 1 << 7

	lsrDR   = 1 << 0
	lsrOE   = 1 << 1
	lsrTHRE = 1 << 5
	lsrTEMT = 1 << 6

	mcrOut2 = 1 << 3
	mcrLoop = 1 << 4

	msrCTS = 1 << 4
	msrDSR = 1 << 5
	msrDCD = 1 << 7
)

// NewUART returns a UART writing to out and raising interrupts with irq.
func NewUART(out io.Writer, irq func(level bool)) *UART {
	return &UART{out: out, irq: irq, space: func() {}}
}

// OnSpace sets the function called (from a vCPU thread, without locks
// held) when the guest has read from a full FIFO.
func (u *UART) OnSpace(f func()) {
	u.mu.Lock()
	u.space = f
	u.mu.Unlock()
}

// Room is how many bytes Receive would take now.
func (u *UART) Room() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return uartFIFOSize - len(u.rx)
}

// Receive queues host input for the guest and returns how many bytes
// it took (at most Room()); the rest is the caller's to keep.
func (u *UART) Receive(b []byte) int {
	u.mu.Lock()
	n := min(len(b), uartFIFOSize-len(u.rx))
	u.rx = append(u.rx, b[:n]...)
	u.received += uint64(n)
	u.update()
	u.mu.Unlock()
	return n
}

// Read implements a guest register read.
func (u *UART) Read(off uint64, data []byte) {
	u.mu.Lock()
	v, wasFull := u.read(off)
	u.update()
	space := u.space
	u.mu.Unlock()
	for i := range data {
		data[i] = v
	}
	if wasFull {
		space()
	}
}

// read returns a register value and whether it freed FIFO space that
// the host was waiting for. Caller holds mu.
func (u *UART) read(off uint64) (byte, bool) {
	switch off {
	case regData:
		if u.lcr&lcrDLAB != 0 {
			return u.dll, false
		}
		if len(u.rx) == 0 {
			return 0, false
		}
		full := len(u.rx) == uartFIFOSize
		v := u.rx[0]
		u.rx = append(u.rx[:0], u.rx[1:]...)
		return v, full
	case regIER:
		if u.lcr&lcrDLAB != 0 {
			return u.dlm, false
		}
		return u.ier, false
	case regIIR:
		iir := u.iir()
		if iir&0x0f == iirTHRI {
			u.threPending = false // reading IIR acknowledges THRE
		}
		if u.fcr&1 != 0 {
			iir |= iirFIFO
		}
		return iir, false
	case regLCR:
		return u.lcr, false
	case regMCR:
		return u.mcr, false
	case regLSR:
		lsr := byte(lsrTHRE|lsrTEMT) | u.lsrErr
		if len(u.rx) > 0 {
			lsr |= lsrDR
		}
		u.lsrErr = 0
		return lsr, false
	case regMSR:
		if u.mcr&mcrLoop != 0 {
			m := u.mcr
			return (m&1)<<5 | (m&2)<<3 | (m&4)<<4 | (m&8)<<4, false
		}
		return msrCTS | msrDSR | msrDCD, false
	case regSCR:
		return u.scr, false
	}
	return 0xff, false
}

// Write implements a guest register write.
func (u *UART) Write(off uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	v := data[0]
	u.mu.Lock()
	var tx, freed bool
	switch off {
	case regData:
		if u.lcr&lcrDLAB != 0 {
			u.dll = v
			break
		}
		if u.mcr&mcrLoop != 0 {
			if len(u.rx) < uartFIFOSize {
				u.rx = append(u.rx, v)
			} else {
				u.lsrErr |= lsrOE
			}
		} else {
			tx = true
			u.sent++
		}
		u.threPending = true // the byte left at once: THR is empty again
	case regIER:
		if u.lcr&lcrDLAB != 0 {
			u.dlm = v
			break
		}
		if v&ierTHRI != 0 && u.ier&ierTHRI == 0 {
			u.threPending = true // enabling THRI with THR empty interrupts
		}
		u.ier = v & 0x0f
	case regIIR:
		u.fcr = v
		if v&2 != 0 { // clear RX FIFO
			// A full FIFO's host input is paused until space appears:
			// clearing makes space as surely as reading does.
			freed = len(u.rx) == uartFIFOSize
			u.rx = u.rx[:0]
		}
	case regLCR:
		u.lcr = v
	case regMCR:
		u.mcr = v & 0x1f
	case regSCR:
		u.scr = v
	}
	u.update()
	space := u.space
	u.mu.Unlock()
	if freed {
		space()
	}
	if tx {
		// Outside the lock: out never blocks, but may take its own lock.
		u.out.Write([]byte{v})
	}
}

// iir computes the highest-priority pending interrupt. Caller holds mu.
func (u *UART) iir() byte {
	switch {
	case u.ier&ierRLSI != 0 && u.lsrErr != 0:
		return iirRLSI
	case u.ier&ierRDI != 0 && len(u.rx) > 0:
		return iirRDI
	case u.ier&ierTHRI != 0 && u.threPending:
		return iirTHRI
	}
	return iirNone
}

// update drives the interrupt line to the level the registers call
// for, only on a change, so an edge-triggered pin sees one edge per new
// interrupt. On a PC, OUT2 gates the UART's interrupt onto the ISA bus.
// Caller holds mu, which also keeps line changes in order.
func (u *UART) update() {
	level := u.iir() != iirNone && u.mcr&mcrOut2 != 0
	if level != u.level {
		u.level = level
		if level {
			u.raised++
		}
		u.irq(level)
	}
}

// UARTStats is a look at the UART from outside, for diagnosing a guest
// that stopped reading or writing its console: the registers, what
// waits in the FIFO, the interrupt the chip asks for, and counters.
type UARTStats struct {
	IER, IIR, LCR, MCR byte // IIR as the guest would read it (reading acknowledges nothing here)
	RXFIFO             int  // bytes waiting for the guest
	THREPending        bool
	Level              bool   // the interrupt line (IIR says one, and OUT2 gates it through)
	Raised             uint64 // rising edges of the line
	Received, Sent     uint64 // bytes to and from the guest
}

// Stats returns the UART's state now without changing it.
func (u *UART) Stats() UARTStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return UARTStats{IER: u.ier, IIR: u.iir(), LCR: u.lcr, MCR: u.mcr, RXFIFO: len(u.rx),
		THREPending: u.threPending, Level: u.level, Raised: u.raised, Received: u.received, Sent: u.sent}
}
