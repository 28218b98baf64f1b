package boot

import (
	"encoding/binary"
	"fmt"
)

// bpACPIRSDPAddr is boot_params.acpi_rsdp_addr (boot protocol 2.14+;
// older kernels find the RSDP by scanning 0xE0000–0xFFFFF instead).
const bpACPIRSDPAddr = 0x070

// SetRSDP tells the kernel where the ACPI RSDP is: boot_params for a
// bzImage, start_info.rsdp_paddr for PVH. Call it after Load.
func (e *Entry) SetRSDP(mem Memory, addr uint64) error {
	var at uint64
	switch e.Kind {
	case BzImage64:
		at = e.BootParams + bpACPIRSDPAddr
	case PVH32:
		at = e.StartInfo + siRSDPPaddr
	default:
		return fmt.Errorf("boot: RSDP for an unknown entry kind %v", e.Kind)
	}
	b, err := mem.Slice(at, 8)
	if err != nil {
		return fmt.Errorf("boot: writing the RSDP address: %w", err)
	}
	binary.LittleEndian.PutUint64(b, addr)
	return nil
}
