package devices

import "sync"

// I8042 is the keyboard controller reduced to what a VM needs: enough
// of the command protocol that a probing guest finds a sane controller
// with no keyboard, and the reset line (command 0xFE, or output port
// bit 0 cleared) that Linux's reboot=k uses.
type I8042 struct {
	onReset func()

	mu sync.Mutex
	// The fields below are guarded by mu.
	ctr     byte   // controller configuration ("command byte")
	out     []byte // bytes waiting in the output buffer
	pending byte   // command waiting for its data byte, or 0
}

// NewI8042 calls onReset when the guest pulses the reset line.
func NewI8042(onReset func()) *I8042 { return &I8042{onReset: onReset, ctr: 0x30} }

const (
	i8042Data   = 0 // port 0x60
	i8042Status = 4 // port 0x64

	statusOBF     = 1 << 0
	statusSysFlag = 1 << 2
)

// Read returns the data or status register.
func (k *I8042) Read(off uint64, data []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var v byte
	switch off {
	case i8042Data:
		if len(k.out) > 0 {
			v, k.out = k.out[0], k.out[1:]
		}
	case i8042Status:
		v = statusSysFlag
		if len(k.out) > 0 {
			v |= statusOBF
		}
	}
	for i := range data {
		data[i] = v
	}
}

// Write takes a command (0x64) or data byte (0x60).
func (k *I8042) Write(off uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	v := data[0]
	reset := false
	k.mu.Lock()
	switch off {
	case i8042Status:
		reset = k.command(v)
	case i8042Data:
		switch k.pending {
		case 0x60: // write configuration byte
			k.ctr = v
		case 0xd1: // write output port: bit 0 low holds the CPU in reset
			reset = v&1 == 0
		}
		k.pending = 0
	}
	k.mu.Unlock()
	if reset {
		k.onReset()
	}
}

// command handles one controller command; it reports a reset request.
// Caller holds mu.
func (k *I8042) command(c byte) bool {
	if len(k.out) >= 16 {
		k.out = k.out[1:] // a guest that never reads gets no unbounded buffer
	}
	switch c {
	case 0x20: // read configuration byte
		k.out = append(k.out, k.ctr)
	case 0x60, 0xd1:
		k.pending = c
	case 0xaa: // self test: passed
		k.out = append(k.out, 0x55)
	case 0xab, 0xa9: // port tests: no error
		k.out = append(k.out, 0x00)
	case 0xfe:
		return true
	}
	return false
}
