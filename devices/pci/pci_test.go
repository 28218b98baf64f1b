package pci

import (
	"encoding/binary"
	"testing"
)

func rd(f Function, off uint64, n int) uint32 {
	var b [4]byte
	f.ReadConfig(off, b[:n])
	return binary.LittleEndian.Uint32(b[:])
}

func wr(f Function, off uint64, n int, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	f.WriteConfig(off, b[:n])
}

func testFunction(t *testing.T) *ConfigSpace {
	t.Helper()
	c := NewConfigSpace(Header{VendorID: 0x1af4, DeviceID: 0x1043, Revision: 1, Class: 0x078000, SubsysVendorID: 0x1af4, SubsysID: 0x1100, InterruptPin: 1})
	for _, b := range []struct {
		i int
		b BAR
	}{
		{0, BAR{Kind: BARIO, Size: 0x20, Addr: 0xc000}},
		{1, BAR{Kind: BARMem32, Size: 0x1000, Addr: 0xc0001000}},
		{2, BAR{Kind: BARMem64, Size: 0x8000, Prefetchable: true, Addr: 0xc0008000}},
		{4, BAR{Kind: BARMem64, Size: 1 << 33, Addr: 1 << 34}},
	} {
		if err := c.SetBAR(b.i, b.b); err != nil {
			t.Fatalf("SetBAR(%d) = %v; want nil", b.i, err)
		}
	}
	return c
}

func TestConfigHeader(t *testing.T) {
	c := testFunction(t)
	for _, tt := range []struct {
		off  uint64
		n    int
		want uint32
	}{
		{RegVendorID, 4, 0x10431af4},
		{RegRevision, 4, 0x07800001},
		{RegClass + 2, 1, 0x07},
		{RegSubsysVendor, 4, 0x11001af4},
		{RegInterruptPin, 1, 1},
		{RegHeaderType, 1, 0},
		{RegStatus, 2, 0},
		{0x100, 4, 0}, // extended space: no capabilities
	} {
		if got := rd(c, tt.off, tt.n); got != tt.want {
			t.Errorf("read %d bytes at %#x = %#x; want %#x", tt.n, tt.off, got, tt.want)
		}
	}
}

func TestConfigMasks(t *testing.T) {
	c := testFunction(t)
	for _, tt := range []struct {
		name  string
		off   uint64
		n     int
		write uint32
		want  uint32
	}{
		{"vendor id is read-only", RegVendorID, 4, 0, 0x10431af4},
		{"command: only defined bits", RegCommand, 2, 0xffff, commandWritable},
		{"interrupt line writable", RegInterruptLine, 1, 0x0b, 0x0b},
		{"interrupt pin read-only", RegInterruptPin, 1, 3, 1},
		{"class read-only", RegRevision, 4, 0, 0x07800001},
		{"ROM BAR absent", RegROM, 4, 0xffffffff, 0},
		{"BAR 3 is BAR 2's upper half", RegBAR0 + 12, 4, 0x12, 0x12},
		{"BAR 5 is BAR 4's upper half (size 8 GiB)", RegBAR0 + 20, 4, 0xffffffff, 0xfffffffe},
		{"extended space read-only", 0x800, 4, 0xffffffff, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wr(c, tt.off, tt.n, tt.write)
			if got := rd(c, tt.off, tt.n); got != tt.want {
				t.Errorf("after writing %#x at %#x: read %#x; want %#x", tt.write, tt.off, got, tt.want)
			}
		})
	}
}

func TestStatusWriteOneToClear(t *testing.T) {
	c := testFunction(t)
	c.Store(RegStatus, []byte{0x00, 0x90}) // signalled system error, detected parity
	c.SetInterruptStatus(true)
	wr(c, RegStatus, 2, 0x1008) // clear bit 12; the INTx status bit is read-only
	if got := rd(c, RegStatus, 2); got != 0x8008 {
		t.Errorf("status = %#x; want %#x", got, 0x8008)
	}
	wr(c, RegStatus, 2, 0x0100) // bit 8 is not set: no change
	if got := rd(c, RegStatus, 2); got != 0x8008 {
		t.Errorf("status after clearing bit 8 = %#x; want %#x", got, 0x8008)
	}
}

func TestBARSizing(t *testing.T) {
	for _, tt := range []struct {
		name     string
		reg      int
		wantLo   uint32
		wantHi   uint32
		hasUpper bool
		addr     uint64
	}{
		{"I/O 32 bytes", 0, 0xffe1, 0, false, 0xc000},
		{"32-bit memory 4 KiB", 1, 0xfffff000, 0, false, 0xc0001000},
		{"64-bit prefetchable 32 KiB", 2, 0xffff800c, 0xffffffff, true, 0xc0008000},
		{"64-bit 8 GiB", 4, 0x00000004, 0xfffffffe, true, 1 << 34},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testFunction(t)
			if got := c.BARAddr(tt.reg); got != tt.addr {
				t.Errorf("BARAddr(%d) = %#x; want %#x", tt.reg, got, tt.addr)
			}
			off := uint64(RegBAR0 + 4*tt.reg)
			wr(c, off, 4, 0xffffffff)
			if tt.hasUpper {
				wr(c, off+4, 4, 0xffffffff)
			}
			if got := rd(c, off, 4); got != tt.wantLo {
				t.Errorf("BAR %d after all ones = %#x; want %#x", tt.reg, got, tt.wantLo)
			}
			if tt.hasUpper {
				if got := rd(c, off+4, 4); got != tt.wantHi {
					t.Errorf("BAR %d upper after all ones = %#x; want %#x", tt.reg, got, tt.wantHi)
				}
			}
			// Restore: the driver writes back the address.
			wr(c, off, 4, uint32(tt.addr))
			if tt.hasUpper {
				wr(c, off+4, 4, uint32(tt.addr>>32))
			}
			if got := c.BARAddr(tt.reg); got != tt.addr {
				t.Errorf("BARAddr(%d) after restore = %#x; want %#x", tt.reg, got, tt.addr)
			}
		})
	}
}

func TestSetBARErrors(t *testing.T) {
	c := NewConfigSpace(Header{})
	for _, tt := range []struct {
		i int
		b BAR
	}{
		{6, BAR{Kind: BARMem32, Size: 16}},
		{5, BAR{Kind: BARMem64, Size: 16}},
		{0, BAR{Kind: BARMem32, Size: 24}},
		{0, BAR{Kind: BARMem32, Size: 8}},
		{0, BAR{Kind: BARMem32, Size: 0x1000, Addr: 0x800}},
		{0, BAR{Kind: BARMem32, Size: 0x1000, Addr: 1 << 32}},
	} {
		if err := c.SetBAR(tt.i, tt.b); err == nil {
			t.Errorf("SetBAR(%d, %+v) = nil; want an error", tt.i, tt.b)
		}
	}
}

func TestCapabilityList(t *testing.T) {
	c := testFunction(t)
	if caps := Capabilities(c); caps != nil {
		t.Fatalf("Capabilities() = %v before any; want none", caps)
	}
	ids := []byte{CapMSIX, 0x09, 0x09}
	var offs []int
	for i, id := range ids {
		off, err := c.AddCapability(id, make([]byte, 10+3*i), nil)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
	}
	if rd(c, RegStatus, 2)&StatusCapList == 0 {
		t.Errorf("status lacks the capability list bit")
	}
	caps := Capabilities(c)
	if len(caps) != len(ids) {
		t.Fatalf("Capabilities() = %v; want %d entries", caps, len(ids))
	}
	for i, cp := range caps {
		if cp.ID != ids[i] || cp.Offset != offs[i] || cp.Offset%4 != 0 {
			t.Errorf("capability %d = %+v; want id %#x at %#x (dword aligned)", i, cp, ids[i], offs[i])
		}
	}
	if _, err := c.AddCapability(0x09, make([]byte, 250), nil); err == nil {
		t.Errorf("AddCapability(250 bytes) = nil; want an error (does not fit)")
	}
}

func TestRootAbsentFunctions(t *testing.T) {
	r := NewRoot()
	e := r.ECAM()
	for _, off := range []uint64{
		1 << 15,              // 01:0, empty slot
		1 << 12,              // 00:00.1
		1 << 20,              // bus 1
		31<<15 | 7<<12 | 0xc, // 00:1f.7
	} {
		var b [4]byte
		e.Read(off, b[:])
		if binary.LittleEndian.Uint32(b[:]) != 0xffffffff {
			t.Errorf("ECAM read at %#x = % x; want all ones", off, b)
		}
		e.Write(off, []byte{0, 0, 0, 0}) // must not panic
	}
	var b [4]byte
	e.Read(0, b[:])
	if got := binary.LittleEndian.Uint32(b[:]); got != HostBridgeDevice<<16|HostBridgeVendor {
		t.Errorf("00:00.0 id = %#x; want %#x", got, HostBridgeDevice<<16|HostBridgeVendor)
	}
	e.Read(RegRevision, b[:])
	if got := binary.LittleEndian.Uint32(b[:]) >> 8; got != ClassHostBridge {
		t.Errorf("00:00.0 class = %#x; want %#x", got, ClassHostBridge)
	}
}

func TestRootAdd(t *testing.T) {
	r := NewRoot()
	if err := r.Add(0, NewConfigSpace(Header{})); err == nil {
		t.Errorf("Add(0) = nil; want an error (the host bridge)")
	}
	if s, err := r.AddNext(NewConfigSpace(Header{})); s != 1 || err != nil {
		t.Errorf("AddNext() = %d, %v; want 1, nil", s, err)
	}
	if err := r.Add(1, NewConfigSpace(Header{})); err == nil {
		t.Errorf("Add(1) twice = nil; want an error")
	}
	if err := r.Add(32, NewConfigSpace(Header{})); err == nil {
		t.Errorf("Add(32) = nil; want an error")
	}
}

// cf8 is a config mechanism #1 helper.
type cf8 struct{ c *ConfigIO }

func (p cf8) out(port uint64, n int, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	p.c.Write(port-ConfigIOPort, b[:n])
}

func (p cf8) in(port uint64, n int) uint32 {
	var b [4]byte
	p.c.Read(port-ConfigIOPort, b[:n])
	return binary.LittleEndian.Uint32(b[:])
}

func addr(dev, fn, reg int) uint32 { return 1<<31 | uint32(dev)<<11 | uint32(fn)<<8 | uint32(reg) }

func TestConfigIO(t *testing.T) {
	r := NewRoot()
	f := testFunction(t)
	if err := r.Add(3, f); err != nil {
		t.Fatal(err)
	}
	p := cf8{r.ConfigIO()}
	p.out(0xcf8, 4, addr(3, 0, 0))
	if got := p.in(0xcf8, 4); got != addr(3, 0, 0) {
		t.Errorf("address register = %#x; want %#x", got, addr(3, 0, 0))
	}
	for _, tt := range []struct {
		port uint64
		n    int
		want uint32
	}{
		{0xcfc, 4, 0x10431af4},
		{0xcfc, 2, 0x1af4},
		{0xcfe, 2, 0x1043},
		{0xcfd, 1, 0x1a},
		{0xcfd, 2, 0x431a}, // unaligned word
		{0xcff, 1, 0x10},
	} {
		if got := p.in(tt.port, tt.n); got != tt.want {
			t.Errorf("in%d(%#x) = %#x; want %#x", tt.n, tt.port, got, tt.want)
		}
	}
	// Byte and word writes land on the right register bytes.
	p.out(0xcf8, 4, addr(3, 0, RegInterruptLine))
	p.out(0xcfc, 1, 0x0a)
	if got := p.in(0xcfc, 1); got != 0x0a {
		t.Errorf("interrupt line = %#x; want 0x0a", got)
	}
	p.out(0xcf8, 4, addr(3, 0, RegCommand))
	p.out(0xcfc, 2, CommandMemory|CommandBusMaster)
	p.out(0xcfd, 2, 0xffff) // unaligned: command high byte and status low byte
	if got := f.Command(); got != CommandMemory|CommandBusMaster|commandWritable&0xff00 {
		t.Errorf("command = %#x; want %#x", got, CommandMemory|CommandBusMaster|commandWritable&0xff00)
	}
	// Partial address register accesses leave it alone and read ones.
	p.out(0xcfb, 1, 0x01)
	if got := p.in(0xcf8, 4); got != addr(3, 0, RegCommand) {
		t.Errorf("address register after outb(0xcfb) = %#x; want %#x", got, addr(3, 0, RegCommand))
	}
	if got := p.in(0xcf8, 2); got != 0xffff {
		t.Errorf("inw(0xcf8) = %#x; want 0xffff", got)
	}
	// Disabled address, absent device: all ones.
	p.out(0xcf8, 4, addr(3, 0, 0)&^(1<<31))
	if got := p.in(0xcfc, 4); got != 0xffffffff {
		t.Errorf("data with enable bit clear = %#x; want all ones", got)
	}
	p.out(0xcf8, 4, addr(4, 0, 0))
	if got := p.in(0xcfc, 4); got != 0xffffffff {
		t.Errorf("absent 00:04.0 = %#x; want all ones", got)
	}
}

func TestECAMExtendedAndUnaligned(t *testing.T) {
	r := NewRoot()
	f := testFunction(t)
	if err := r.Add(2, f); err != nil {
		t.Fatal(err)
	}
	e := r.ECAM()
	base := uint64(2 << 15)
	var b [4]byte
	e.Read(base+1, b[:2]) // unaligned: vendor high byte, device low byte
	if got := binary.LittleEndian.Uint16(b[:]); got != 0x431a {
		t.Errorf("ECAM unaligned word = %#x; want 0x431a", got)
	}
	e.Read(base+0xffc, b[:])
	if got := binary.LittleEndian.Uint32(b[:]); got != 0 {
		t.Errorf("ECAM extended dword = %#x; want 0", got)
	}
	var q [8]byte
	e.Read(base+0xffc, q[:]) // crosses into the next function
	for _, v := range q {
		if v != 0xff {
			t.Errorf("ECAM read crossing functions = % x; want all ones", q)
			break
		}
	}
}
