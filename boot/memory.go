package boot

import (
	"fmt"
	"sort"
)

// Memory is guest physical memory as the loader sees it.
type Memory interface {
	// Slice returns the host bytes backing [addr, addr+n), or an error if any part is not RAM.
	Slice(addr, n uint64) ([]byte, error)
}

// Range is one RAM range of guest physical memory.
type Range struct{ Start, Size uint64 }

// End returns the first address after r.
func (r Range) End() uint64 { return r.Start + r.Size }

// checkRAM rejects ranges that wrap around the address space.
func checkRAM(ram []Range) error {
	if len(ram) == 0 {
		return fmt.Errorf("boot: no RAM ranges")
	}
	for _, r := range ram {
		if r.Size == 0 || r.Start+r.Size < r.Start {
			return fmt.Errorf("boot: bad RAM range [%#x, +%#x)", r.Start, r.Size)
		}
	}
	return nil
}

// write copies data to guest address addr; what names the data in errors.
func write(mem Memory, addr uint64, data []byte, what string) error {
	b, err := mem.Slice(addr, uint64(len(data)))
	if err != nil {
		return fmt.Errorf("boot: writing %s at %#x (%d bytes): %w", what, addr, len(data), err)
	}
	copy(b, data)
	return nil
}

// zero clears [addr, addr+n) of guest memory.
func zero(mem Memory, addr, n uint64, what string) error {
	b, err := mem.Slice(addr, n)
	if err != nil {
		return fmt.Errorf("boot: clearing %s at %#x (%d bytes): %w", what, addr, n, err)
	}
	clear(b)
	return nil
}

// placeHigh returns the highest page-aligned address a such that
// [a, a+size) lies in one RAM range, a >= floor and a+size <= limit.
// The initrd goes there: as high as possible keeps it out of the kernel's
// way while it decompresses and relocates itself.
func placeHigh(ram []Range, size, floor, limit uint64) (uint64, bool) {
	rs := append([]Range(nil), ram...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].End() > rs[j].End() })
	for _, r := range rs {
		hi := min(r.End(), limit)
		if hi < size {
			continue
		}
		a := (hi - size) &^ (pageSize - 1)
		if a >= r.Start && a >= floor {
			return a, true
		}
	}
	return 0, false
}

// lowRAMEnd is the end of the RAM below 4 GiB that is contiguous with the
// first MiB: the "top of low RAM" the boot protocols speak of.
func lowRAMEnd(ram []Range) uint64 {
	end := uint64(0)
	for _, r := range ram {
		if r.Start <= HighMemAddr && r.End() > end {
			end = r.End()
		}
	}
	return min(end, 1<<32)
}

// Zeroer is memory that can zero whole pages without touching them
// (fresh anonymous memory, given back with MADV_DONTNEED): a kernel's
// .bss of tens of MiB then costs neither time nor resident memory.
type Zeroer interface {
	ZeroPages(addr, n uint64) error
}

// zeroSegment clears b, the bytes at guest address addr: the
// page-aligned middle through Zeroer when mem has it, the edges by hand.
func zeroSegment(mem Memory, addr uint64, b []byte) {
	z, ok := mem.(Zeroer)
	start := (addr + pageSize - 1) &^ (pageSize - 1)
	end := (addr + uint64(len(b))) &^ (pageSize - 1)
	if !ok || end <= start || z.ZeroPages(start, end-start) != nil {
		clear(b)
		return
	}
	clear(b[:start-addr])
	clear(b[end-addr:])
}
