package devices

import "sync"

// GED is the event register of the ACPI Generic Event Device vmm's DSDT
// describes (acpi.GED): one byte at an I/O port. A read returns the
// pending events and clears them; writes are ignored. PowerButton makes
// the power-button event pending and raises the GED's interrupt, an
// edge: the guest's _EVT reads the register once per interrupt, and a
// press while one is pending is the same event.
type GED struct {
	raise func()

	mu sync.Mutex
	// pending are the events not yet read; guarded by mu.
	pending byte
}

// GED event bits (the bit QEMU's GED uses for a power-down request).
const GEDPowerButton = 1 << 1

// GEDPort is where vmm puts the register, after the ACPI sleep (0x3c0)
// and reset (0x3c1) registers.
const GEDPort = 0x3c2

// NewGED returns a register whose events are signalled by raise (a
// pulse on the GED's interrupt).
func NewGED(raise func()) *GED { return &GED{raise: raise} }

// PowerButton presses the power button.
func (g *GED) PowerButton() {
	g.mu.Lock()
	g.pending |= GEDPowerButton
	g.mu.Unlock()
	g.raise()
}

// Read returns the pending events in the first byte (any wider access
// reads zeros above it) and clears them.
func (g *GED) Read(_ uint64, data []byte) {
	clear(data)
	if len(data) == 0 {
		return
	}
	g.mu.Lock()
	data[0] = g.pending
	g.pending = 0
	g.mu.Unlock()
}

// Write ignores what the guest writes (the field is WriteAsZeros).
func (g *GED) Write(uint64, []byte) {}
