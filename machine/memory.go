package machine

import (
	"fmt"

	"golang.org/x/sys/unix"

	"vmm/boot"
)

// Region is one contiguous piece of guest RAM backed by one mmap.
type Region struct {
	Start uint64
	Host  []byte
}

// Memory is guest RAM: one region below the MMIO hole, and one above
// 4 GiB when the guest has more RAM than fits below it.
type Memory struct {
	regions []Region
	// fromFile: the regions map a snapshot privately, where giving a
	// page back brings back the file's bytes, not zeros.
	fromFile bool
}

// NewMemory maps size bytes of anonymous memory laid out around the hole.
func NewMemory(size uint64) (*Memory, error) {
	if size < 1<<20 {
		return nil, fmt.Errorf("guest memory %d bytes: at least 1 MiB is needed", size)
	}
	if size%4096 != 0 {
		return nil, fmt.Errorf("guest memory %d bytes: not a multiple of 4 KiB", size)
	}
	m := &Memory{}
	low := min(size, MMIOHoleStart)
	if err := m.add(0, low); err != nil {
		return nil, err
	}
	if size > low {
		if err := m.add(MMIOHoleEnd, size-low); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

func (m *Memory) add(start, size uint64) error {
	host, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("mmap %d MiB of guest memory at %#x: %w", size>>20, start, err)
	}
	m.regions = append(m.regions, Region{Start: start, Host: host})
	return nil
}

// Close unmaps all guest memory.
func (m *Memory) Close() error {
	var first error
	for _, r := range m.regions {
		if err := unix.Munmap(r.Host); err != nil && first == nil {
			first = err
		}
	}
	m.regions = nil
	return first
}

// Regions returns the RAM regions in address order.
func (m *Memory) Regions() []Region { return m.regions }

// RAM returns the RAM ranges, as the boot loader wants them.
func (m *Memory) RAM() []boot.Range {
	var rs []boot.Range
	for _, r := range m.regions {
		rs = append(rs, boot.Range{Start: r.Start, Size: uint64(len(r.Host))})
	}
	return rs
}

// Size is the total RAM in bytes.
func (m *Memory) Size() uint64 {
	var n uint64
	for _, r := range m.regions {
		n += uint64(len(r.Host))
	}
	return n
}

// Slice returns the host bytes backing [addr, addr+n). The range must
// lie inside one region; the check is overflow-safe because addresses
// come from the guest.
func (m *Memory) Slice(addr, n uint64) ([]byte, error) {
	for _, r := range m.regions {
		size := uint64(len(r.Host))
		if addr >= r.Start && addr-r.Start <= size && n <= size-(addr-r.Start) {
			off := addr - r.Start
			return r.Host[off : off+n : off+n], nil
		}
	}
	return nil, fmt.Errorf("guest range [%#x, +%#x) is not RAM", addr, n)
}

// ZeroPages zeroes whole pages by giving them back to the kernel; the
// next touch maps a fresh zero page (boot.Zeroer).
func (m *Memory) ZeroPages(addr, n uint64) error {
	if addr%4096 != 0 || n%4096 != 0 {
		return fmt.Errorf("ZeroPages(%#x, %#x): not page-aligned", addr, n)
	}
	b, err := m.Slice(addr, n)
	if err != nil {
		return err
	}
	if m.fromFile {
		clear(b)
		return nil
	}
	return unix.Madvise(b, unix.MADV_DONTNEED)
}
