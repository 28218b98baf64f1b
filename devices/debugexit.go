// Package devices holds the legacy PC devices: the 8250 UART, the
// i8042's reset line and the debug-exit port.
package devices

// DebugExit is QEMU's isa-debug-exit at a port of the machine's choice
// (0xf4): a guest write of v ends the VM with status v. (QEMU's own
// exit status is 2v+1; ours is v, which is what tests want to read.)
type DebugExit struct {
	onExit func(status int)
}

// NewDebugExit calls onExit with the written value.
func NewDebugExit(onExit func(status int)) *DebugExit { return &DebugExit{onExit: onExit} }

// Read returns zero: the port has nothing to say.
func (d *DebugExit) Read(_ uint64, data []byte) {
	for i := range data {
		data[i] = 0
	}
}

// Write ends the VM with the low byte written.
func (d *DebugExit) Write(_ uint64, data []byte) {
	if len(data) > 0 {
		d.onExit(int(data[0]))
	}
}
