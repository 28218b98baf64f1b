package acpi

// Hardware-reduced sleep (ACPI 6.5 §4.8.3.7): the OS writes
// SLP_TYP<<2 | SLP_EN to the sleep control register.
const (
	SleepTypeS5    = 5
	sleepTypeShift = 2
	sleepTypeMask  = 7
	sleepEnable    = 1 << 5
	// DefaultSleepPort is where Cloud Hypervisor puts its register too.
	DefaultSleepPort = 0x3c0
)

// SleepControlValue is what the OS writes to enter sleep state typ.
func SleepControlValue(typ byte) byte { return typ<<sleepTypeShift | sleepEnable }

// SleepControl is the sleep control/status register as a 1-byte device
// (PIO or MMIO). A write entering S5 calls PowerOff; status reads as 0.
type SleepControl struct {
	S5Type   byte // SLP_TYP of \_S5 (Config.S5Type)
	PowerOff func()
}

// Read implements the bus device: no wake status to report.
func (s *SleepControl) Read(offset uint64, data []byte) { clear(data) }

// Write implements the bus device.
func (s *SleepControl) Write(offset uint64, data []byte) {
	if offset != 0 || len(data) == 0 {
		return
	}
	v := data[0]
	if v&sleepEnable != 0 && v>>sleepTypeShift&sleepTypeMask == s.S5Type && s.PowerOff != nil {
		s.PowerOff()
	}
}
