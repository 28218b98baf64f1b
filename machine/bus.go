package machine

import (
	"fmt"
	"sort"
	"sync"
)

// Device is anything on a bus. Offsets are relative to the base the
// device was added at; len(data) is the access size (1, 2, 4 or 8).
// Read must fill data; handlers run on vCPU threads and must not block
// on host I/O.
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

type busRange struct {
	base, size uint64
	name       string
	dev        Device
}

// Bus maps address ranges (ports or guest physical addresses) to
// devices. Every vCPU shares it; lookups take a read lock only.
type Bus struct {
	name string

	mu sync.RWMutex
	// ranges is sorted by base and non-overlapping; guarded by mu.
	ranges []busRange
}

// NewBus returns an empty bus; name ("pio", "mmio") appears in errors.
func NewBus(name string) *Bus { return &Bus{name: name} }

// Add places dev at [base, base+size).
func (b *Bus) Add(base, size uint64, name string, dev Device) error {
	if size == 0 || base+size < base {
		return fmt.Errorf("%s bus: %s: bad range %#x+%#x", b.name, name, base, size)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].base >= base })
	if i > 0 {
		if p := b.ranges[i-1]; p.base+p.size > base {
			return fmt.Errorf("%s bus: %s at %#x overlaps %s at %#x", b.name, name, base, p.name, p.base)
		}
	}
	if i < len(b.ranges) && base+size > b.ranges[i].base {
		n := b.ranges[i]
		return fmt.Errorf("%s bus: %s at %#x overlaps %s at %#x", b.name, name, base, n.name, n.base)
	}
	b.ranges = append(b.ranges, busRange{})
	copy(b.ranges[i+1:], b.ranges[i:])
	b.ranges[i] = busRange{base: base, size: size, name: name, dev: dev}
	return nil
}

// Remove takes the device at base off the bus.
func (b *Bus) Remove(base uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, r := range b.ranges {
		if r.base == base {
			b.ranges = append(b.ranges[:i], b.ranges[i+1:]...)
			return true
		}
	}
	return false
}

// find returns the device holding the whole access [addr, addr+n).
func (b *Bus) find(addr uint64, n int) (Device, uint64, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].base > addr }) - 1
	if i < 0 {
		return nil, 0, false
	}
	r := b.ranges[i]
	off := addr - r.base
	if off >= r.size || uint64(n) > r.size-off {
		return nil, 0, false
	}
	return r.dev, off, true
}

// Read dispatches a read; an absent device reads as all ones, as an
// undriven bus does on a PC. It reports whether a device answered.
func (b *Bus) Read(addr uint64, data []byte) bool {
	dev, off, ok := b.find(addr, len(data))
	if !ok {
		for i := range data {
			data[i] = 0xff
		}
		return false
	}
	dev.Read(off, data)
	return true
}

// Write dispatches a write; writes to absent devices are dropped.
func (b *Bus) Write(addr uint64, data []byte) bool {
	dev, off, ok := b.find(addr, len(data))
	if !ok {
		return false
	}
	dev.Write(off, data)
	return true
}
