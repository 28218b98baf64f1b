package acpi

// FADT (ACPI 6.5 §5.2.9), revision 6, for a hardware-reduced platform:
// no PM1/GPE blocks, no SCI; power-off goes through the sleep control
// register with the SLP_TYP that \_S5 names, and reset, where the
// config has one, through the reset register (RESET_REG_SUP).
//
// Linux on x86 tries the register first unless the platform is
// hardware-reduced and the kernel has EFI support (Debian's kernels):
// then reboot_init picks EFI, and a kernel not booted through EFI goes
// on to the BIOS reset vector (boot.WriteResetVector), never to ACPI.
// reboot=a, kernels without CONFIG_EFI and other OSes take the register.
//
// IAPC_BOOT_ARCH is Config.BootFlags, and Linux acts on it: an FADT of
// revision >= 2 without Boot8042 means "no PS/2 controller", so the
// i8042 driver gives up at once instead of probing the ports (seconds
// of timeouts against a controller that only resets the machine), and
// BootNoCMOSRTC would stop it registering the CMOS RTC. Without
// BootNoCMOSRTC the FADT's CENTURY names the RTC's century byte, which
// Linux then reads and writes with the rest of the date.
const (
	fadtSize       = 276
	fadtRevision   = 6
	fadtMinor      = 5
	flagPwrButton  = 1 << 4  // no fixed power button
	flagSlpButton  = 1 << 5  // no fixed sleep button
	flagResetReg   = 1 << 10 // RESET_REG_SUP
	flagHWReduced  = 1 << 20 // HW_REDUCED_ACPI
	offDSDT        = 40
	offCentury     = 108
	offBootArch    = 109
	offFlags       = 112
	offResetReg    = 116
	offResetValue  = 128
	offMinor       = 131
	offXDSDT       = 140
	offSleepCtl    = 244
	offSleepStatus = 256
	offHypervisor  = 268
)

// IA-PC boot architecture flags (FADT IAPC_BOOT_ARCH).
const (
	BootLegacyDevices = 1 << 0
	Boot8042          = 1 << 1
	BootNoVGA         = 1 << 2
	BootNoMSI         = 1 << 3
	BootNoASPM        = 1 << 4
	BootNoCMOSRTC     = 1 << 5
)

// RTCCentury is the CMOS index of an MC146818 RTC's century byte (the
// PC/AT convention, as in QEMU), which the FADT names when there is a
// CMOS RTC.
const RTCCentury = 0x32

func fadt(dsdt uint64, c Config) []byte {
	body := make([]byte, fadtSize-headerSize)
	at := func(off int) []byte { return body[off-headerSize:] }
	le.PutUint32(at(offDSDT), uint32(dsdt))
	if c.BootFlags&BootNoCMOSRTC == 0 {
		at(offCentury)[0] = RTCCentury
	}
	le.PutUint16(at(offBootArch), c.BootFlags)
	flags := uint32(flagHWReduced | flagPwrButton | flagSlpButton)
	if c.ResetRegister.Address != 0 {
		flags |= flagResetReg
		copy(at(offResetReg), c.ResetRegister.bytes())
		at(offResetValue)[0] = c.ResetValue
	}
	le.PutUint32(at(offFlags), flags)
	at(offMinor)[0] = fadtMinor
	le.PutUint64(at(offXDSDT), dsdt)
	copy(at(offSleepCtl), c.SleepControl.bytes())
	copy(at(offSleepStatus), c.SleepStatus.bytes())
	copy(at(offHypervisor), "GOVMM   ")
	return table("FACP", fadtRevision, "GOVMMFAC", body)
}
