package pci

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func stateFunction(t *testing.T, device uint16) *ConfigSpace {
	t.Helper()
	c := NewConfigSpace(Header{VendorID: 0x1af4, DeviceID: device, Class: 0x078000, InterruptPin: 1})
	if err := c.SetBAR(0, BAR{Kind: BARMem64, Size: 0x4000, Addr: 0xc0000000}); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigSpaceState(t *testing.T) {
	a := stateFunction(t, 0x1043)
	a.WriteConfig(RegCommand, []byte{CommandMemory | CommandBusMaster, 0})
	a.WriteConfig(RegInterruptLine, []byte{17})
	a.WriteConfig(RegBAR0, []byte{0, 0, 0, 0xd0}) // the guest moves the BAR
	a.SetInterruptStatus(true)
	saved := a.SaveState()

	b := stateFunction(t, 0x1043)
	if err := b.RestoreState(saved); err != nil {
		t.Fatal(err)
	}
	for off := uint64(0); off < ConfigSize; off += 4 {
		x, y := make([]byte, 4), make([]byte, 4)
		a.ReadConfig(off, x)
		b.ReadConfig(off, y)
		if !bytes.Equal(x, y) {
			t.Errorf("config %#x: restored % x; original % x", off, y, x)
		}
	}
	if got := b.BARAddr(0); got != 0xd0000000 {
		t.Errorf("restored BAR 0 at %#x; want 0xd0000000", got)
	}
	// The masks are the constructor's: read-only bits stay read-only.
	b.WriteConfig(RegVendorID, []byte{0, 0})
	if v := b.Load16(RegVendorID); v != 0x1af4 {
		t.Errorf("vendor after a guest write = %#x; want 0x1af4 (read-only)", v)
	}

	other := stateFunction(t, 0x1042)
	if err := other.RestoreState(saved); err == nil || !strings.Contains(err.Error(), "this function has") {
		t.Errorf("RestoreState into another device = %v; want a refusal", err)
	}
	if err := b.RestoreState(saved[:256]); err == nil {
		t.Error("RestoreState of 256 bytes = nil; want a refusal")
	}
}

func TestMSIXState(t *testing.T) {
	a := NewMSIX(3, &fakeSink{})
	program(a, 0, 0xfee00000, 0x41, false)
	program(a, 1, 0xfee01000, 0x42, true)
	a.SetControl(msixEnable)
	a.Fire(1) // masked: pending
	saved := a.SaveState()

	sink := &fakeSink{}
	b := NewMSIX(3, sink)
	if err := b.RestoreState(saved); err != nil {
		t.Fatal(err)
	}
	if want := []string{"0:0xfee00000/0x41"}; !reflect.DeepEqual(sink.routes, want) {
		t.Errorf("routes after restore = %v; want %v (the unmasked vector only)", sink.routes, want)
	}
	if got := b.SaveState(); !bytes.Equal(got, saved) {
		t.Errorf("SaveState after RestoreState = %x; want %x", got, saved)
	}
	if p := pba(b); p != 1<<1 {
		t.Errorf("PBA after restore = %#b; want vector 1 pending", p)
	}
	tableA, tableB := make([]byte, a.TableSize()), make([]byte, b.TableSize())
	for off := uint64(0); off < a.TableSize(); off += 4 {
		a.ReadTable(off, tableA[off:off+4])
		b.ReadTable(off, tableB[off:off+4])
	}
	if !bytes.Equal(tableA, tableB) {
		t.Errorf("restored table % x; original % x", tableB, tableA)
	}
	b.Fire(0)
	program(b, 1, 0xfee01000, 0x42, false) // unmasking sends the pending message
	if want := []int{0, 1}; !reflect.DeepEqual(sink.fired, want) {
		t.Errorf("fired after restore = %v; want %v", sink.fired, want)
	}

	for name, edit := range map[string]func(b []byte) []byte{
		"4 vectors":   func(b []byte) []byte { binary.LittleEndian.PutUint16(b, 4); return b },
		"short":       func(b []byte) []byte { return b[:len(b)-1] },
		"empty":       func(b []byte) []byte { return nil },
		"enable 2":    func(b []byte) []byte { b[2] = 2; return b },
		"pending 2":   func(b []byte) []byte { b[4+16] = 2; return b },
		"extra bytes": func(b []byte) []byte { return append(b, 0) },
	} {
		if err := NewMSIX(3, &fakeSink{}).RestoreState(edit(bytes.Clone(saved))); err == nil || !strings.Contains(err.Error(), "MSI-X state") {
			t.Errorf("RestoreState with %s = %v; want a refusal", name, err)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		x := bytes.Clone(saved)
		for range 3 {
			x[r.IntN(len(x))] = byte(r.Uint32())
		}
		NewMSIX(3, &fakeSink{}).RestoreState(x) // refused or taken, never a panic
	}
}
