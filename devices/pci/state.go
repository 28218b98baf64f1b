package pci

import (
	"encoding/binary"
	"fmt"
)

// Snapshot state of a function: its configuration space bytes and its
// MSI-X table, pending bits and control word. The masks, capabilities
// and BAR layout are rebuilt by the device's constructor from the same
// command line, so only the values the guest wrote are saved.

// SaveState returns the configuration space's bytes.
func (c *ConfigSpace) SaveState() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.data[:]...)
}

// identity are the read-only header bytes that name a function: vendor,
// device, revision, class, header type, subsystem ids and the
// capability pointer. A saved space must carry the same ones.
var identity = [][2]int{{RegVendorID, 4}, {RegRevision, 4}, {RegHeaderType, 1}, {RegSubsysVendor, 4}, {RegCapPtr, 1}, {RegInterruptPin, 1}}

// RestoreState sets the configuration space from SaveState's bytes; the
// saved function must be the same kind as this one.
func (c *ConfigSpace) RestoreState(b []byte) error {
	if len(b) != ConfigSize {
		return fmt.Errorf("PCI config state: %d bytes; want %d", len(b), ConfigSize)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range identity {
		if got, want := b[r[0]:r[0]+r[1]], c.data[r[0]:r[0]+r[1]]; string(got) != string(want) {
			return fmt.Errorf("PCI config state: bytes %#x-%#x are % x; this function has % x", r[0], r[0]+r[1]-1, got, want)
		}
	}
	copy(c.data[:], b)
	return nil
}

type msixHeader struct {
	Vectors        uint16
	Enabled, FMask uint8
}

type msixVector struct {
	Addr    uint64
	Data    uint32
	Ctrl    uint32
	Pending uint8
	_       [3]uint8
}

// SaveState returns the MSI-X control bits and every vector's message,
// control word and pending bit.
func (m *MSIX) SaveState() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	// binary.Append fails only on types that are not fixed-size.
	b, _ := binary.Append(nil, binary.LittleEndian, &msixHeader{Vectors: uint16(len(m.table)),
		Enabled: flag(m.enabled), FMask: flag(m.fmask)})
	for _, e := range m.table {
		b, _ = binary.Append(b, binary.LittleEndian, &msixVector{Addr: e.addr, Data: e.data, Ctrl: e.ctrl, Pending: flag(e.pending)})
	}
	return b
}

// RestoreState sets the table from SaveState's bytes and routes every
// vector that may fire, so the first interrupt after the restore needs
// no routing (the sink's routes, KVM's GSI table, are not in the
// snapshot).
func (m *MSIX) RestoreState(b []byte) error {
	var h msixHeader
	hs, vs := binary.Size(h), binary.Size(msixVector{})
	if len(b) < hs {
		return fmt.Errorf("MSI-X state: %d bytes", len(b))
	}
	binary.Decode(b, binary.LittleEndian, &h)
	m.mu.Lock()
	defer m.mu.Unlock()
	if int(h.Vectors) != len(m.table) || len(b) != hs+len(m.table)*vs || h.Enabled > 1 || h.FMask > 1 {
		return fmt.Errorf("MSI-X state: %d vectors in %d bytes (enable %d, mask %d); this function has %d",
			h.Vectors, len(b), h.Enabled, h.FMask, len(m.table))
	}
	table := make([]msixEntry, len(m.table))
	for i := range table {
		var v msixVector
		binary.Decode(b[hs+i*vs:], binary.LittleEndian, &v)
		if v.Pending > 1 {
			return fmt.Errorf("MSI-X state: vector %d pending bit %d", i, v.Pending)
		}
		table[i] = msixEntry{addr: v.Addr, data: v.Data, ctrl: v.Ctrl, pending: v.Pending == 1}
	}
	m.table, m.enabled, m.fmask = table, h.Enabled == 1, h.FMask == 1
	for v := range m.table {
		if !m.masked(v) {
			m.route(v)
		}
	}
	return nil
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
