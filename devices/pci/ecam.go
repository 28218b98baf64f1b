package pci

// ECAMBusSize is the ECAM window of one bus: 32 devices × 8 functions ×
// 4 KiB.
const ECAMBusSize = 1 << 20

// ECAM is the memory-mapped configuration window for bus 0, one device
// on the MMIO bus at the base the MCFG table announces.
type ECAM struct{ root *Root }

// ECAM returns the MMIO device for r, ECAMBusSize bytes long.
func (r *Root) ECAM() *ECAM { return &ECAM{root: r} }

func decodeECAM(offset uint64) (bus, dev, fn int, reg uint64) {
	return int(offset >> 20), int(offset >> 15 & 0x1f), int(offset >> 12 & 7), offset & 0xfff
}

// Read handles a load; an access that crosses a function's 4 KiB reads
// as ones.
func (e *ECAM) Read(offset uint64, data []byte) {
	bus, dev, fn, reg := decodeECAM(offset)
	e.root.access(bus, dev, fn, reg, data, false)
}

// Write handles a store.
func (e *ECAM) Write(offset uint64, data []byte) {
	bus, dev, fn, reg := decodeECAM(offset)
	e.root.access(bus, dev, fn, reg, data, true)
}
