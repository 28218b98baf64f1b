package pci

import (
	"encoding/binary"
	"testing"
)

// FuzzConfigAccess replays guest config accesses through CF8/CFC and
// ECAM against a function with BARs and capabilities. Each op is 8
// bytes: flags (bit 0 write, bit 1 ECAM), size (1-8), offset (le16),
// value (le32). Identity registers must survive and nothing may panic.
func FuzzConfigAccess(f *testing.F) {
	op := func(flags, size byte, off uint16, v uint32) []byte {
		b := []byte{flags, size}
		b = binary.LittleEndian.AppendUint16(b, off)
		return binary.LittleEndian.AppendUint32(b, v)
	}
	cat := func(ops ...[]byte) []byte {
		var b []byte
		for _, o := range ops {
			b = append(b, o...)
		}
		return b
	}
	// Port ops use offsets relative to 0xCF8; ECAM ops the function's
	// register (slot 1 is added below).
	f.Add(cat(op(1, 4, 0, addr(1, 0, RegBAR0+4)), op(1, 4, 4, 0xffffffff), op(0, 4, 4, 0)))
	f.Add(cat(op(3, 4, RegBAR0+8, 0xffffffff), op(3, 4, RegBAR0+12, 0xffffffff), op(2, 4, RegBAR0+8, 0)))
	f.Add(cat(op(3, 2, RegCommand, 0xffff), op(2, 1, RegCapPtr, 0), op(2, 2, 0x41, 0), op(3, 8, 0xffc, 1)))
	f.Add(cat(op(1, 1, 3, 0x80), op(1, 2, 5, 0xffff), op(0, 3, 5, 0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewRoot()
		c := testFunction(t)
		if _, err := c.AddCapability(CapMSIX, make([]byte, 10), []byte{0, 0xc0}); err != nil {
			t.Fatal(err)
		}
		if err := r.Add(1, c); err != nil {
			t.Fatal(err)
		}
		io, e := r.ConfigIO(), r.ECAM()
		for ; len(data) >= 8; data = data[8:] {
			size := int(data[1]%8) + 1
			off := uint64(binary.LittleEndian.Uint16(data[2:]))
			var v [8]byte
			copy(v[:], data[4:8])
			buf := v[:size]
			switch data[0] & 3 {
			case 0:
				io.Read(off%ConfigIOSize, buf)
			case 1:
				io.Write(off%ConfigIOSize, buf)
			case 2:
				e.Read(1<<15|off%ConfigSize, buf)
			case 3:
				e.Write(1<<15|off%ConfigSize, buf)
			}
		}
		if got := c.Load32(RegVendorID); got != 0x10431af4 {
			t.Errorf("vendor/device = %#x; want 0x10431af4 (read-only)", got)
		}
		if caps := Capabilities(c); len(caps) != 1 || caps[0].ID != CapMSIX {
			t.Errorf("Capabilities() = %v; want the one MSI-X capability", caps)
		}
		if a := c.BARAddr(1); a%0x1000 != 0 {
			t.Errorf("BAR 1 = %#x; want 4 KiB aligned", a)
		}
	})
}
