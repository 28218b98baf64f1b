package boot

import (
	"encoding/binary"
	"testing"
)

func TestSetRSDP(t *testing.T) {
	for _, kind := range []Kind{BzImage64, PVH32} {
		m := lowMem(1 << 20)
		e := &Entry{Kind: kind, BootParams: BootParamsAddr, StartInfo: StartInfoAddr}
		if err := e.SetRSDP(m, 0xE0000); err != nil {
			t.Fatal(err)
		}
		at := uint64(BootParamsAddr + 0x070)
		if kind == PVH32 {
			at = StartInfoAddr + 32
		}
		if got := binary.LittleEndian.Uint64(m.bytes(at, 8)); got != 0xE0000 {
			t.Errorf("%v: RSDP address at %#x = %#x; want 0xe0000", kind, at, got)
		}
	}
}
