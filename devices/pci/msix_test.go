package pci

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"

	"vmm/kvm"
)

// fakeSink records what MSIX asks of its sink.
type fakeSink struct {
	routes []string
	fired  []int
}

func (s *fakeSink) Route(v int, addr uint64, data uint32) error {
	s.routes = append(s.routes, fmt.Sprintf("%d:%#x/%#x", v, addr, data))
	return nil
}
func (s *fakeSink) Trigger(v int) { s.fired = append(s.fired, v) }

func program(m *MSIX, v int, addr uint64, data uint32, masked bool) {
	var b [4]byte
	put := func(off uint64, x uint32) {
		binary.LittleEndian.PutUint32(b[:], x)
		m.WriteTable(uint64(v)*MSIXEntrySize+off, b[:])
	}
	put(0, uint32(addr))
	put(4, uint32(addr>>32))
	put(8, data)
	ctrl := uint32(0)
	if masked {
		ctrl = 1
	}
	put(12, ctrl)
}

func pba(m *MSIX) uint64 {
	var b [8]byte
	m.ReadPBA(0, b[:])
	return binary.LittleEndian.Uint64(b[:])
}

func TestMSIXTable(t *testing.T) {
	m := NewMSIX(3, &fakeSink{})
	var b [8]byte
	m.ReadTable(12, b[:4])
	if got := binary.LittleEndian.Uint32(b[:]); got != 1 {
		t.Errorf("vector 0 control after reset = %#x; want 1 (masked)", got)
	}
	program(m, 1, 0xfee01003, 0x4041, true)
	m.ReadTable(16, b[:])
	if got := binary.LittleEndian.Uint64(b[:]); got != 0xfee01000 {
		t.Errorf("vector 1 address (qword read) = %#x; want 0xfee01000 (low bits reserved)", got)
	}
	m.ReadTable(24, b[:4])
	if got := binary.LittleEndian.Uint32(b[:]); got != 0x4041 {
		t.Errorf("vector 1 data = %#x; want 0x4041", got)
	}
	for _, off := range []uint64{2, 48, 1000} {
		m.ReadTable(off, b[:4]) // unaligned or out of range: zero, no panic
		if got := binary.LittleEndian.Uint32(b[:]); got != 0 {
			t.Errorf("table read at %d = %#x; want 0", off, got)
		}
	}
	if m.TableSize() != 48 || m.PBASize() != 8 {
		t.Errorf("TableSize, PBASize = %d, %d; want 48, 8", m.TableSize(), m.PBASize())
	}
	body, wm := m.Capability(4, 0x4000, 0x6000)
	if got := binary.LittleEndian.Uint16(body); got != 2 {
		t.Errorf("capability table size field = %d; want 2 (N-1)", got)
	}
	if got := binary.LittleEndian.Uint32(body[2:]); got != 0x4004 {
		t.Errorf("table offset/BIR = %#x; want 0x4004", got)
	}
	if got := binary.LittleEndian.Uint16(wm); got != 0xc000 {
		t.Errorf("control write mask = %#x; want 0xc000", got)
	}
}

func TestMSIXMaskPending(t *testing.T) {
	s := &fakeSink{}
	m := NewMSIX(2, s)
	if m.Fire(0) {
		t.Errorf("Fire(0) with MSI-X disabled = true; want false (INTx)")
	}
	m.SetControl(msixEnable)
	program(m, 0, 0xfee00000, 0x31, true)
	if !m.Fire(0) {
		t.Fatalf("Fire(0) = false; want true")
	}
	if len(s.fired) != 0 || !m.Pending(0) || pba(m) != 1 {
		t.Fatalf("masked vector fired %v, pending %v, PBA %#x; want not sent, pending, PBA 1", s.fired, m.Pending(0), pba(m))
	}
	program(m, 0, 0xfee00000, 0x31, false) // unmask: the pending message goes out
	if !reflect.DeepEqual(s.fired, []int{0}) || m.Pending(0) || pba(m) != 0 {
		t.Errorf("after unmask fired %v, PBA %#x; want [0], 0", s.fired, pba(m))
	}
	if !reflect.DeepEqual(s.routes, []string{"0:0xfee00000/0x31"}) {
		t.Errorf("routes = %v; want one for vector 0", s.routes)
	}
	m.Fire(0)
	if len(s.routes) != 1 || len(s.fired) != 2 {
		t.Errorf("second fire: routes %v fired %v; want no new route, 2 fires", s.routes, s.fired)
	}
	program(m, 0, 0xfee01000, 0x32, false) // new message: rerouted before the next send
	m.Fire(0)
	if len(s.routes) != 2 || s.routes[1] != "0:0xfee01000/0x32" {
		t.Errorf("routes after reprogramming = %v; want the new message", s.routes)
	}

	// Function mask holds every vector; clearing it delivers.
	m.SetControl(msixEnable | msixFunctionMsk)
	program(m, 1, 0xfee00000, 0x41, false)
	m.Fire(1)
	if !m.Pending(1) || len(s.fired) != 3 {
		t.Fatalf("function-masked vector: pending %v, fired %v; want pending, 3 fires", m.Pending(1), s.fired)
	}
	m.SetControl(msixEnable)
	if m.Pending(1) || s.fired[len(s.fired)-1] != 1 {
		t.Errorf("after clearing the function mask: pending %v, fired %v; want vector 1 sent", m.Pending(1), s.fired)
	}
	if m.Fire(2) || m.Fire(-1) {
		t.Errorf("Fire of a vector outside the table = true; want false")
	}
	m.Reset()
	if m.Enabled() || m.Pending(0) {
		t.Errorf("after Reset: enabled %v; want disabled", m.Enabled())
	}
}

type fakeRouting struct{ tables [][]kvm.RoutingEntry }

func (f *fakeRouting) SetGSIRouting(e []kvm.RoutingEntry) error {
	f.tables = append(f.tables, e)
	return nil
}

func TestGSIRouter(t *testing.T) {
	vm := &fakeRouting{}
	base := DefaultIRQChipRoutes()
	if len(base) != 16*2+8 {
		t.Fatalf("DefaultIRQChipRoutes() has %d entries; want 40", len(base))
	}
	g := NewGSIRouter(vm, base, IOAPICPins)
	a, _ := g.AllocGSI()
	b, _ := g.AllocGSI()
	if a != 24 || b != 25 {
		t.Errorf("AllocGSI() = %d, %d; want 24, 25", a, b)
	}
	if len(vm.tables) != 0 {
		t.Errorf("allocation committed %d tables; want none", len(vm.tables))
	}
	if err := g.SetMSIRoute(b, 0xfee00000, 0x31); err != nil {
		t.Fatal(err)
	}
	if err := g.SetMSIRoute(a, 0xfee00000, 0x30); err != nil {
		t.Fatal(err)
	}
	last := vm.tables[len(vm.tables)-1]
	want := append(DefaultIRQChipRoutes(), kvm.MSIRoute(24, 0xfee00000, 0x30), kvm.MSIRoute(25, 0xfee00000, 0x31))
	if !reflect.DeepEqual(last, want) {
		t.Errorf("committed table = %v; want irqchip routes then GSIs 24, 25", last)
	}
	if err := g.SetMSIRoute(99, 0, 0); err == nil {
		t.Errorf("SetMSIRoute(unallocated) = nil; want an error")
	}
	if err := g.FreeGSI(a); err != nil {
		t.Fatal(err)
	}
	if got := g.Entries(); len(got) != len(base)+1 {
		t.Errorf("after FreeGSI: %d entries; want %d", len(got), len(base)+1)
	}
	if c, _ := g.AllocGSI(); c != a {
		t.Errorf("AllocGSI() after free = %d; want %d reused", c, a)
	}
}
