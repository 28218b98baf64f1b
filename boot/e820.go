package boot

import (
	"fmt"
	"sort"
)

// E820 memory types, shared by the bzImage e820 table and the PVH memory map.
const (
	E820RAM      = 1
	E820Reserved = 2
)

// maxE820 is E820_MAX_ENTRIES_ZEROPAGE, the size of boot_params.e820_table.
const maxE820 = 128

// E820Entry is one entry of the guest's physical memory map.
type E820Entry struct {
	Addr, Size uint64
	Type       uint32
}

// MemoryMap returns the map the guest is given: the RAM ranges, minus the
// EBDA/VGA/BIOS window [0x9FC00, 0x100000), which is listed as reserved so
// that the kernel leaves the MP table (and anything else there) alone.
func MemoryMap(ram []Range) ([]E820Entry, error) {
	if err := checkRAM(ram); err != nil {
		return nil, err
	}
	m := []E820Entry{{Addr: lowReservedStart, Size: lowReservedEnd - lowReservedStart, Type: E820Reserved}}
	for _, r := range ram {
		// The part below the window, then the part above it.
		if r.Start < lowReservedStart {
			m = append(m, E820Entry{Addr: r.Start, Size: min(r.End(), lowReservedStart) - r.Start, Type: E820RAM})
		}
		if r.End() > lowReservedEnd {
			s := max(r.Start, lowReservedEnd)
			m = append(m, E820Entry{Addr: s, Size: r.End() - s, Type: E820RAM})
		}
	}
	sort.Slice(m, func(i, j int) bool { return m[i].Addr < m[j].Addr })
	for i := 1; i < len(m); i++ {
		if m[i].Addr < m[i-1].Addr+m[i-1].Size {
			return nil, fmt.Errorf("boot: RAM ranges overlap at %#x", m[i].Addr)
		}
	}
	if len(m) > maxE820 {
		return nil, fmt.Errorf("boot: %d memory map entries, at most %d fit", len(m), maxE820)
	}
	return m, nil
}
