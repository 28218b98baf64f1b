package boot

import "fmt"

// ResetVectorAddr is where a PC's firmware is entered after a reset in
// real mode: F000:FFF0, the last 16 bytes of the BIOS area.
const ResetVectorAddr = 0xFFFF0

// resetVectorCode resets the machine through the keyboard controller,
// which every vmm machine has, and halts if that did nothing:
//
//	mov al, 0xfe   ; pulse the reset line
//	out 0x64, al
//	cli
//	hlt
//	jmp short -4   ; back to cli
//
// It stands in for the firmware a PC would enter here. Linux jumps to
// F000:FFF0 in real mode for reboot=b, and, on a hardware-reduced ACPI
// platform (vmm's), as the fallback of its default reboot method: there
// reboot_init picks EFI, efi_reboot returns at once when the kernel was
// not booted through EFI, and machine_real_restart(MRR_BIOS) follows.
// With nothing at the vector the vCPU ran through zeroed memory in real
// mode forever, and `reboot` never ended the VM.
var resetVectorCode = []byte{
	0xB0, 0xFE, // mov al, 0xfe
	0xE6, 0x64, // out 0x64, al
	0xFA,       // cli
	0xF4,       // hlt
	0xEB, 0xFC, // jmp short -4 (to cli)
}

// WriteResetVector puts resetVectorCode at ResetVectorAddr, in the
// BIOS area that the memory map reserves. Call it before Load: a PVH
// ELF with a segment over the vector keeps its own bytes there.
func WriteResetVector(mem Memory) error {
	b, err := mem.Slice(ResetVectorAddr, uint64(len(resetVectorCode)))
	if err != nil {
		return fmt.Errorf("boot: reset vector at %#x: %w", ResetVectorAddr, err)
	}
	copy(b, resetVectorCode)
	return nil
}
