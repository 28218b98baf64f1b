package virtio

import (
	"encoding/binary"
	"io"
	"log/slog"
	"testing"

	"vmm/devices/pci"
)

// FuzzPCIAccess replays guest accesses to a virtio-pci function: each
// op is 12 bytes, kind (0 BAR read, 1 BAR write, 2 config read, 3
// config write, 4 device signals queue value%4, 5 config change), size
// (1-8), offset (le16) and value (le64). Nothing may panic, and the
// identity registers must survive.
func FuzzPCIAccess(f *testing.F) {
	op := func(kind, size byte, off uint16, v uint64) []byte {
		b := []byte{kind, size}
		b = binary.LittleEndian.AppendUint16(b, off)
		return binary.LittleEndian.AppendUint64(b, v)
	}
	cat := func(ops ...[]byte) []byte {
		var b []byte
		for _, o := range ops {
			b = append(b, o...)
		}
		return b
	}
	bringUp := cat(
		op(1, 1, commonStatus, 3), op(1, 4, commonGFSelect, 1), op(1, 4, commonGF, 1),
		op(1, 1, commonStatus, 11), op(1, 2, commonQSelect, 1), op(1, 2, commonQSize, 8),
		op(1, 8, commonQDescLo, tDesc), op(1, 8, commonQAvailLo, tAvail), op(1, 8, commonQUsedLo, tUsed),
		op(1, 2, commonQEnable, 1), op(1, 1, commonStatus, 15),
	)
	f.Add(bringUp)
	f.Add(cat(bringUp, op(4, 1, 0, 1), op(0, 1, pciISROff, 0), op(1, 1, commonStatus, 0)))
	f.Add(cat(op(3, 2, 0x42, 0x8000), op(1, 4, pciMSIXTableOff, 0xfee00000), op(1, 4, pciMSIXTableOff+12, 0),
		op(1, 2, commonMSIX, 0), op(5, 1, 0, 0), op(0, 8, pciMSIXPBAOff, 0), op(0, 4, pciMSIXTableOff+3, 0)))
	f.Add(cat(op(2, 4, 0x34, 0), op(3, 4, pci.RegBAR0+16, 0xffffffff), op(0, 4, 0, 0), op(1, 2, pciNotifyOff+4, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		prev := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
		defer slog.SetDefault(prev)
		r := newTestPCI(t, testDevice())
		for ; len(data) >= 12; data = data[12:] {
			size := int(data[1]%8) + 1
			off := uint64(binary.LittleEndian.Uint16(data[2:]))
			var v [8]byte
			copy(v[:], data[4:12])
			buf := v[:size]
			switch data[0] % 6 {
			case 0:
				r.p.Read(off%PCIBARSize, buf)
			case 1:
				r.p.Write(off%PCIBARSize, buf)
			case 2:
				r.p.ReadConfig(off%pci.LegacyConfigSize, buf[:min(size, 4)])
			case 3:
				r.p.WriteConfig(off%pci.LegacyConfigSize, buf[:min(size, 4)])
			case 4:
				r.p.irq.Signal(int(v[0] % 4))
			case 5:
				r.p.irq.ConfigChanged()
			}
		}
		if got := r.cfgR(0, 4); got != 0x10431af4 {
			t.Errorf("vendor/device = %#x; want 0x10431af4", got)
		}
		if n := len(pci.Capabilities(r.p)); n != 6 {
			t.Errorf("%d capabilities; want 6", n)
		}
	})
}
