package ringmem

import "testing"

// TestLoadStore16 accesses a u16 at every 2-aligned offset of slices whose
// host base is 0 or 2 mod 4 and checks the bytes around it are kept.
func TestLoadStore16(t *testing.T) {
	backing := make([]byte, 32)
	for _, shift := range []int{0, 2, 4, 6} {
		b := backing[shift : shift+10]
		for off := 0; off+2 <= len(b); off += 2 {
			for i := range backing {
				backing[i] = byte(i)
			}
			want := uint16(b[off]) | uint16(b[off+1])<<8
			if got := Load16(b, off); got != want {
				t.Errorf("Load16(base+%d, %d) = %#x; want %#x", shift, off, got, want)
			}
			Store16(b, off, 0xbeef)
			for i := range backing {
				w := byte(i)
				switch i {
				case shift + off:
					w = 0xef
				case shift + off + 1:
					w = 0xbe
				}
				if backing[i] != w {
					t.Errorf("after Store16(base+%d, %d): byte %d = %#x; want %#x", shift, off, i, backing[i], w)
				}
			}
		}
	}
}
