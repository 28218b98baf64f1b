package machine

import (
	"fmt"

	"vmm/snapshot"
)

// snapshotMemory lays out guest RAM as NewMemory does, each region a
// private mapping of the snapshot's RAM section: a page costs memory
// only once the guest (or a device) touches it.
func snapshotMemory(f *snapshot.File, size uint64) (*Memory, error) {
	if size != f.State.MemSize {
		return nil, fmt.Errorf("snapshot %s: saved with -m %s, this run has -m %s",
			f.Path(), snapshot.FormatSize(f.State.MemSize), snapshot.FormatSize(size))
	}
	m := &Memory{fromFile: true}
	low := min(size, MMIOHoleStart)
	parts := []struct{ start, size uint64 }{{0, low}}
	if size > low {
		parts = append(parts, struct{ start, size uint64 }{MMIOHoleEnd, size - low})
	}
	var off uint64 // RAM is stored region after region
	for _, p := range parts {
		host, err := f.MapRAM(off, p.size)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.regions = append(m.regions, Region{Start: p.start, Host: host})
		off += p.size
	}
	return m, nil
}
