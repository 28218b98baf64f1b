package boot

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// mpParsed is what the test parser finds, checksums checked.
type mpParsed struct {
	oem, product string
	lapic        uint32
	procs        [][4]uint32 // {apic id, version, flags, signature}
	buses        []string
	ioapics      [][3]uint32 // {id, version, address}, enabled
	ioIntrs      [][4]uint8  // {type, src irq, dst apic, dst pin}
	localIntrs   [][4]uint8  // {type, src irq, dst apic, dst lint}
}

// parseMP scans [start, start+n) for the floating pointer on 16-byte
// boundaries, as a guest does, and parses the table it points at.
func parseMP(mem *testMem, start, n uint64) (*mpParsed, uint64, error) {
	area := mem.bytes(start, n)
	for off := uint64(0); off+16 <= n; off += 16 {
		fp := area[off : off+16]
		if string(fp[:4]) != "_MP_" {
			continue
		}
		if checksum(fp) != 0 {
			return nil, 0, fmt.Errorf("floating pointer checksum %#x", checksum(fp))
		}
		if fp[8] != 1 || fp[9] != 4 || fp[11] != 0 {
			return nil, 0, fmt.Errorf("floating pointer length %d rev %d feature1 %d", fp[8], fp[9], fp[11])
		}
		p, err := parseMPConfig(mem, uint64(binary.LittleEndian.Uint32(fp[4:])))
		return p, start + off, err
	}
	return nil, 0, fmt.Errorf("no _MP_ in [%#x, %#x)", start, start+n)
}

func parseMPConfig(mem *testMem, addr uint64) (*mpParsed, error) {
	le := binary.LittleEndian
	h := mem.bytes(addr, 44)
	if string(h[:4]) != "PCMP" {
		return nil, fmt.Errorf("config signature %q", h[:4])
	}
	length := uint64(le.Uint16(h[4:]))
	t := mem.bytes(addr, length)
	if checksum(t) != 0 {
		return nil, fmt.Errorf("config checksum %#x", checksum(t))
	}
	if h[6] != 4 || le.Uint16(h[40:]) != 0 || h[42] != 0 {
		return nil, fmt.Errorf("config rev %d ext length %d ext checksum %d", h[6], le.Uint16(h[40:]), h[42])
	}
	p := &mpParsed{oem: string(h[8:16]), product: string(h[16:28]), lapic: le.Uint32(h[36:])}
	count := int(le.Uint16(h[34:]))
	off := uint64(44)
	for i := 0; i < count; i++ {
		if off >= length {
			return nil, fmt.Errorf("entry %d at %d past table length %d", i, off, length)
		}
		e := t[off:]
		switch e[0] {
		case 0:
			p.procs = append(p.procs, [4]uint32{uint32(e[1]), uint32(e[2]), uint32(e[3]), le.Uint32(e[4:])})
			off += 20
		case 1:
			p.buses = append(p.buses, string(e[2:8]))
			off += 8
		case 2:
			if e[3]&1 == 0 {
				return nil, fmt.Errorf("IOAPIC %d disabled", e[1])
			}
			p.ioapics = append(p.ioapics, [3]uint32{uint32(e[1]), uint32(e[2]), le.Uint32(e[4:])})
			off += 8
		case 3, 4:
			if le.Uint16(e[2:]) != 0 || e[4] != 0 {
				return nil, fmt.Errorf("interrupt entry %d: flags %#x bus %d", i, le.Uint16(e[2:]), e[4])
			}
			x := [4]uint8{e[1], e[5], e[6], e[7]}
			if e[0] == 3 {
				p.ioIntrs = append(p.ioIntrs, x)
			} else {
				p.localIntrs = append(p.localIntrs, x)
			}
			off += 8
		default:
			return nil, fmt.Errorf("entry %d has type %d", i, e[0])
		}
	}
	if off != length {
		return nil, fmt.Errorf("entries end at %d, table length %d", off, length)
	}
	return p, nil
}

func TestWriteMPTable(t *testing.T) {
	for _, c := range []struct {
		ncpus    int
		wantAddr uint64
	}{{1, EBDAAddr}, {2, EBDAAddr}, {32, EBDAAddr}, {40, EBDAAddr}, {41, BIOSAddr}, {254, BIOSAddr}} {
		t.Run(fmt.Sprint(c.ncpus), func(t *testing.T) {
			mem := lowMem(2 << 20)
			if err := WriteMPTable(mem, EBDAAddr, c.ncpus); err != nil {
				t.Fatalf("WriteMPTable(%d) = %v", c.ncpus, err)
			}
			if got := MPTableAddr(c.ncpus); got != c.wantAddr {
				t.Errorf("MPTableAddr(%d) = %#x; want %#x", c.ncpus, got, c.wantAddr)
			}
			// Where Linux looks: the EBDA's first KiB, then the BIOS area.
			if got := mem.u16(0x40E) << 4; got != EBDAAddr {
				t.Errorf("BDA EBDA pointer = %#x; want %#x", got, EBDAAddr)
			}
			if got := mem.u16(0x413); got != 639 {
				t.Errorf("BDA base memory = %d KiB; want 639", got)
			}
			p, at, err := parseMP(mem, EBDAAddr, 0x400)
			if err != nil {
				p, at, err = parseMP(mem, BIOSAddr, 0x10000)
			}
			if err != nil {
				t.Fatalf("parseMP = %v", err)
			}
			if at != c.wantAddr {
				t.Errorf("floating pointer at %#x; want %#x", at, c.wantAddr)
			}
			if end := at + MPTableSize(c.ncpus); at == EBDAAddr && end > EBDAAddr+0x400 {
				t.Errorf("MP table [%#x, %#x) overflows the EBDA", at, end)
			}
			if p.oem != "VMM     " || p.lapic != LAPICAddr {
				t.Errorf("config header OEM %q LAPIC %#x; want %q %#x", p.oem, p.lapic, "VMM     ", LAPICAddr)
			}
			if len(p.procs) != c.ncpus {
				t.Fatalf("%d processor entries; want %d", len(p.procs), c.ncpus)
			}
			for i, pr := range p.procs {
				flags := uint32(1)
				if i == 0 {
					flags = 3
				}
				if want := [4]uint32{uint32(i), 0x14, flags, 0x600}; pr != want {
					t.Errorf("processor %d = %v; want %v", i, pr, want)
				}
			}
			if len(p.buses) != 1 || p.buses[0] != "ISA   " {
				t.Errorf("buses = %q; want [\"ISA   \"]", p.buses)
			}
			ioapic := uint32(c.ncpus)
			if want := [][3]uint32{{ioapic, 0x11, IOAPICAddr}}; len(p.ioapics) != 1 || p.ioapics[0] != want[0] {
				t.Errorf("IOAPICs = %v; want %v", p.ioapics, want)
			}
			wantIO := [][4]uint8{{3, 0, uint8(ioapic), 0}, {0, 0, uint8(ioapic), 2}}
			for irq := uint8(1); irq < 16; irq++ {
				if irq != 2 {
					wantIO = append(wantIO, [4]uint8{0, irq, uint8(ioapic), irq})
				}
			}
			if fmt.Sprint(p.ioIntrs) != fmt.Sprint(wantIO) {
				t.Errorf("I/O interrupts = %v; want %v", p.ioIntrs, wantIO)
			}
			wantLocal := [][4]uint8{{3, 0, 0xFF, 0}, {1, 0, 0xFF, 1}}
			if fmt.Sprint(p.localIntrs) != fmt.Sprint(wantLocal) {
				t.Errorf("local interrupts = %v; want %v", p.localIntrs, wantLocal)
			}
		})
	}
}

func TestWriteMPTableErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		mem   uint64
		addr  uint64
		ncpus int
		msg   string
	}{
		{"no CPUs", 2 << 20, EBDAAddr, 0, "MP table for 0 CPUs: want 1 to 254"},
		{"too many CPUs", 2 << 20, EBDAAddr, 255, "MP table for 255 CPUs"},
		{"inside EBDA, too big", 2 << 20, EBDAAddr + 0x200, 20, "does not fit in the 1 KiB EBDA"},
		{"not RAM", 0x90000, EBDAAddr, 1, "writing MP table at 0x9fc00"},
	} {
		err := WriteMPTable(lowMem(c.mem), c.addr, c.ncpus)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("WriteMPTable(%s) = %v; want error containing %q", c.name, err, c.msg)
		}
	}
}
