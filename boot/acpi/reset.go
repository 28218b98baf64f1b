package acpi

// The FADT reset register (ACPI 6.5 §4.8.3.6): the OS writes
// RESET_VALUE to it to reset the machine. A hardware-reduced FADT may
// have one; vmm's sits at the port after the sleep register, as QEMU's
// microvm puts its reset register next to its sleep registers.
const (
	// DefaultResetPort is the reset register's I/O port.
	DefaultResetPort = DefaultSleepPort + 1
	// DefaultResetValue is what resets: 0x0e, the full-reset value of
	// the PC's 0xcf9 reset control register, so a trace reads alike.
	DefaultResetValue = 0x0e
)

// PortRegister is an 8-bit register at an I/O port.
func PortRegister(port uint16) GAS {
	return GAS{Space: SpaceSystemIO, Width: 8, Access: 1, Address: uint64(port)}
}

// ResetControl is the reset register as a 1-byte device (PIO or MMIO).
// Writing Value calls Reset; any other value does nothing, so only a
// write of what the FADT announces resets. Reads return 0.
type ResetControl struct {
	Value byte
	Reset func()
}

// Read implements the bus device.
func (r *ResetControl) Read(offset uint64, data []byte) { clear(data) }

// Write implements the bus device.
func (r *ResetControl) Write(offset uint64, data []byte) {
	if offset == 0 && len(data) > 0 && data[0] == r.Value && r.Reset != nil {
		r.Reset()
	}
}
