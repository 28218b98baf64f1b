package pci

import (
	"encoding/binary"
	"sync"

	"vmm/devices/guestlog"
)

// MSI-X capability (PCI Local Bus 3.0 §6.8.2).
const (
	CapMSIX         = 0x11
	MSIXEntrySize   = 16
	msixEnable      = 1 << 15
	msixFunctionMsk = 1 << 14
	msixVectorMask  = 1 // vector control bit 0
	// MSIXCapSize is the capability's length with its ID and next bytes.
	MSIXCapSize = 12
)

// MSIXSink is where programmed vectors go: Route is called when vector
// v may fire with a new message (before the first Trigger that uses it),
// Trigger sends v's message. Both run with MSIX's lock held and must
// not call back into it.
type MSIXSink interface {
	Route(v int, addr uint64, data uint32) error
	Trigger(v int)
}

type msixEntry struct {
	addr    uint64
	data    uint32
	ctrl    uint32
	routed  bool // sink has (rAddr, rData) for this vector
	rAddr   uint64
	rData   uint32
	pending bool
}

// MSIX is the table, the pending bit array and the message control word
// of an MSI-X capability. The device fires vectors from its own
// goroutine; vCPUs program the table.
type MSIX struct {
	sink MSIXSink
	log  guestlog.Limiter // a refused route, which the guest can write again and again

	mu sync.Mutex
	// Vector and function state; guarded by mu.
	table   []msixEntry
	enabled bool
	fmask   bool
}

// NewMSIX returns n vectors (1-2048), all masked, delivered through sink.
func NewMSIX(n int, sink MSIXSink) *MSIX {
	m := &MSIX{sink: sink, table: make([]msixEntry, n)}
	m.Reset()
	return m
}

// Vectors is the table size.
func (m *MSIX) Vectors() int { return len(m.table) }

// TableSize and PBASize are the byte lengths of the two BAR regions.
func (m *MSIX) TableSize() uint64 { return uint64(len(m.table)) * MSIXEntrySize }
func (m *MSIX) PBASize() uint64   { return (uint64(len(m.table)) + 63) / 64 * 8 }

// Capability returns the body (after ID and next) and its write mask
// for ConfigSpace.AddCapability, with the table and PBA at the given
// offsets of BAR bar.
func (m *MSIX) Capability(bar int, tableOff, pbaOff uint32) (body, writable []byte) {
	body = make([]byte, MSIXCapSize-2)
	binary.LittleEndian.PutUint16(body[0:], uint16(len(m.table)-1))
	binary.LittleEndian.PutUint32(body[2:], tableOff|uint32(bar))
	binary.LittleEndian.PutUint32(body[6:], pbaOff|uint32(bar))
	writable = make([]byte, MSIXCapSize-2)
	binary.LittleEndian.PutUint16(writable, msixEnable|msixFunctionMsk)
	return body, writable
}

// Reset masks every vector and clears the table, the pending bits and
// the control word (what a function reset does).
func (m *MSIX) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.table {
		m.table[i] = msixEntry{ctrl: msixVectorMask}
	}
	m.enabled, m.fmask = false, false
}

// SetControl takes the message control word after a config write.
func (m *MSIX) SetControl(ctrl uint16) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enabled, m.fmask = ctrl&msixEnable != 0, ctrl&msixFunctionMsk != 0
	m.deliverPending()
}

// Enabled reports whether MSI-X is on (INTx is then off).
func (m *MSIX) Enabled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.enabled
}

// masked reports whether vector v may not send; mu must be held.
func (m *MSIX) masked(v int) bool {
	return !m.enabled || m.fmask || m.table[v].ctrl&msixVectorMask != 0
}

// Fire signals vector v: it is sent, or left pending while masked. It
// returns false if MSI-X is disabled or v is not a vector (the caller
// then falls back to INTx or drops the interrupt).
func (m *MSIX) Fire(v int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.enabled || v < 0 || v >= len(m.table) {
		return false
	}
	if m.masked(v) {
		m.table[v].pending = true
		return true
	}
	m.send(v)
	return true
}

// route gives the sink v's message if it changed since last time, so
// that a later Trigger needs no routing update; mu must be held.
func (m *MSIX) route(v int) bool {
	e := &m.table[v]
	if e.routed && e.rAddr == e.addr && e.rData == e.data {
		return true
	}
	if err := m.sink.Route(v, e.addr, e.data); err != nil {
		m.log.Warn("pci: MSI-X route failed", "vector", v, "err", err)
		return false
	}
	e.routed, e.rAddr, e.rData = true, e.addr, e.data
	return true
}

// send routes v if its message changed and triggers it; mu must be held.
func (m *MSIX) send(v int) {
	if !m.route(v) {
		return
	}
	m.table[v].pending = false
	m.sink.Trigger(v)
}

// deliverPending routes every unmasked vector (the driver has just
// unmasked it: its message is final) and sends those pending; mu must
// be held.
func (m *MSIX) deliverPending() {
	for v := range m.table {
		if m.masked(v) {
			continue
		}
		if m.table[v].pending {
			m.send(v)
		} else {
			m.route(v)
		}
	}
}

// ReadTable handles a load from the table region; 4- and 8-byte aligned
// accesses are honoured, others read zero.
func (m *MSIX) ReadTable(offset uint64, data []byte) {
	clear(data)
	if !m.tableAccess(offset, data) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < len(data); i += 4 {
		binary.LittleEndian.PutUint32(data[i:], m.tableWord(offset+uint64(i)))
	}
}

// WriteTable handles a store to the table region.
func (m *MSIX) WriteTable(offset uint64, data []byte) {
	if !m.tableAccess(offset, data) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < len(data); i += 4 {
		m.setTableWord(offset+uint64(i), binary.LittleEndian.Uint32(data[i:]))
	}
}

func (m *MSIX) tableAccess(offset uint64, data []byte) bool {
	n := uint64(len(data))
	return (n == 4 || n == 8) && offset%n == 0 && offset < m.TableSize() && n <= m.TableSize()-offset
}

// tableWord and setTableWord access one dword of the table; mu must be held.
func (m *MSIX) tableWord(offset uint64) uint32 {
	e := &m.table[offset/MSIXEntrySize]
	switch offset % MSIXEntrySize {
	case 0:
		return uint32(e.addr)
	case 4:
		return uint32(e.addr >> 32)
	case 8:
		return e.data
	}
	return e.ctrl
}

func (m *MSIX) setTableWord(offset uint64, v uint32) {
	i := int(offset / MSIXEntrySize)
	e := &m.table[i]
	switch offset % MSIXEntrySize {
	case 0:
		e.addr = e.addr&^0xffffffff | uint64(v&^3) // dword aligned
	case 4:
		e.addr = e.addr&0xffffffff | uint64(v)<<32
	case 8:
		e.data = v
	default:
		e.ctrl = v & msixVectorMask // the other bits are reserved
		if m.masked(i) {
			return
		}
		if e.pending {
			m.send(i)
		} else {
			m.route(i)
		}
	}
}

// ReadPBA handles a load from the pending bit array; writes to it are
// ignored (it is read-only).
func (m *MSIX) ReadPBA(offset uint64, data []byte) {
	clear(data)
	n := uint64(len(data))
	if (n != 4 && n != 8) || offset%n != 0 || offset >= m.PBASize() || n > m.PBASize()-offset {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range data {
		var b byte
		for bit := range 8 {
			if v := int(offset)*8 + i*8 + bit; v < len(m.table) && m.table[v].pending {
				b |= 1 << bit
			}
		}
		data[i] = b
	}
}

// Pending reports vector v's pending bit.
func (m *MSIX) Pending(v int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return v >= 0 && v < len(m.table) && m.table[v].pending
}
