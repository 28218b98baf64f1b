package boot

import "testing"

// zeroingMem records ZeroPages calls and clears like the real thing.
type zeroingMem struct {
	testMem
	calls [][2]uint64
}

func (z *zeroingMem) ZeroPages(addr, n uint64) error {
	z.calls = append(z.calls, [2]uint64{addr, n})
	b, err := z.Slice(addr, n)
	if err != nil {
		return err
	}
	clear(b)
	return nil
}

func TestZeroSegment(t *testing.T) {
	tests := []struct {
		addr, n   uint64
		wantCalls [][2]uint64
	}{
		{0x1800, 0x3000, [][2]uint64{{0x2000, 0x2000}}}, // edges by hand, middle by pages
		{0x1800, 0x400, nil},                            // no whole page inside
		{0x2000, 0x1000, [][2]uint64{{0x2000, 0x1000}}},
	}
	for _, tt := range tests {
		z := &zeroingMem{testMem: *lowMem(1 << 20)}
		b, _ := z.Slice(0, 1<<20)
		for i := range b {
			b[i] = 0x5a
		}
		seg, _ := z.Slice(tt.addr, tt.n)
		zeroSegment(z, tt.addr, seg)
		for a := uint64(0); a < 1<<20; a++ {
			want := byte(0x5a)
			if a >= tt.addr && a < tt.addr+tt.n {
				want = 0
			}
			if b[a] != want {
				t.Fatalf("zeroSegment(%#x, %#x): byte %#x = %#x; want %#x", tt.addr, tt.n, a, b[a], want)
			}
		}
		if len(z.calls) != len(tt.wantCalls) || (len(z.calls) > 0 && z.calls[0] != tt.wantCalls[0]) {
			t.Errorf("zeroSegment(%#x, %#x) ZeroPages calls = %v; want %v", tt.addr, tt.n, z.calls, tt.wantCalls)
		}
	}
}
