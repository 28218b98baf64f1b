package boot

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// A minimal ELF reader: just what the PVH loader needs (program headers,
// notes), with every offset and size from the file checked against its
// length. debug/elf would do, but it parses far more than is needed from
// an untrusted file.

const (
	ptLoad  = 1
	ptNote  = 4
	shtNote = 7

	emI386  = 3
	emX8664 = 62

	// xenElfnotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit
	// protected-mode PVH entry point.
	xenElfnotePhys32Entry = 18
)

var elfMagic = []byte{0x7f, 'E', 'L', 'F'}

type elfProg struct {
	typ                       uint32
	off, paddr, filesz, memsz uint64
	align                     uint64
}

type elfSect struct {
	typ              uint32
	off, size, align uint64
}

type elfFile struct {
	data  []byte
	is64  bool
	progs []elfProg
	sects []elfSect
}

// sub returns data[off:off+n] or an error naming what, never panicking.
func sub(data []byte, off, n uint64, what string) ([]byte, error) {
	if off > uint64(len(data)) || n > uint64(len(data))-off {
		return nil, fmt.Errorf("kernel: ELF %s [%#x, +%#x) is past the end of the file (%d bytes): %w", what, off, n, len(data), ErrTruncated)
	}
	return data[off : off+n], nil
}

// parseELF reads the ELF header, program headers and section headers.
func parseELF(data []byte) (*elfFile, error) {
	if len(data) < 16 {
		return nil, fmt.Errorf("kernel: ELF header: %w", ErrTruncated)
	}
	f := &elfFile{data: data}
	switch data[4] {
	case 1:
	case 2:
		f.is64 = true
	default:
		return nil, fmt.Errorf("kernel: ELF class %d is neither ELF32 nor ELF64", data[4])
	}
	if data[5] != 1 {
		return nil, fmt.Errorf("kernel: ELF data encoding %d is not little-endian", data[5])
	}
	hsize := uint64(52)
	if f.is64 {
		hsize = 64
	}
	h, err := sub(data, 0, hsize, "header")
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if m := le.Uint16(h[18:]); m != emX8664 && m != emI386 {
		return nil, fmt.Errorf("kernel: ELF machine %d is not x86", m)
	}
	var phoff, shoff uint64
	var phentsize, phnum, shentsize, shnum uint16
	if f.is64 {
		phoff, shoff = le.Uint64(h[32:]), le.Uint64(h[40:])
		phentsize, phnum, shentsize, shnum = le.Uint16(h[54:]), le.Uint16(h[56:]), le.Uint16(h[58:]), le.Uint16(h[60:])
	} else {
		phoff, shoff = uint64(le.Uint32(h[28:])), uint64(le.Uint32(h[32:]))
		phentsize, phnum, shentsize, shnum = le.Uint16(h[42:]), le.Uint16(h[44:]), le.Uint16(h[46:]), le.Uint16(h[48:])
	}

	minPh, minSh := uint16(32), uint16(40)
	if f.is64 {
		minPh, minSh = 56, 64
	}
	if phnum > 0 {
		if phentsize < minPh {
			return nil, fmt.Errorf("kernel: ELF program header size %d, want >= %d", phentsize, minPh)
		}
		tab, err := sub(data, phoff, uint64(phnum)*uint64(phentsize), "program headers")
		if err != nil {
			return nil, err
		}
		for i := range uint64(phnum) {
			f.progs = append(f.progs, f.prog(tab[i*uint64(phentsize):]))
		}
	}
	// Section headers are only a fallback for finding notes: ignore a
	// table that is absent or malformed rather than reject the file.
	if shnum > 0 && shentsize >= minSh {
		if tab, err := sub(data, shoff, uint64(shnum)*uint64(shentsize), "section headers"); err == nil {
			for i := range uint64(shnum) {
				f.sects = append(f.sects, f.sect(tab[i*uint64(shentsize):]))
			}
		}
	}
	return f, nil
}

func (f *elfFile) prog(b []byte) elfProg {
	le := binary.LittleEndian
	if f.is64 {
		return elfProg{typ: le.Uint32(b), off: le.Uint64(b[8:]), paddr: le.Uint64(b[24:]),
			filesz: le.Uint64(b[32:]), memsz: le.Uint64(b[40:]), align: le.Uint64(b[48:])}
	}
	return elfProg{typ: le.Uint32(b), off: uint64(le.Uint32(b[4:])), paddr: uint64(le.Uint32(b[12:])),
		filesz: uint64(le.Uint32(b[16:])), memsz: uint64(le.Uint32(b[20:])), align: uint64(le.Uint32(b[28:]))}
}

func (f *elfFile) sect(b []byte) elfSect {
	le := binary.LittleEndian
	if f.is64 {
		return elfSect{typ: le.Uint32(b[4:]), off: le.Uint64(b[24:]), size: le.Uint64(b[32:]), align: le.Uint64(b[48:])}
	}
	return elfSect{typ: le.Uint32(b[4:]), off: uint64(le.Uint32(b[16:])), size: uint64(le.Uint32(b[20:])), align: uint64(le.Uint32(b[32:]))}
}

// pvhEntry finds XEN_ELFNOTE_PHYS32_ENTRY in the PT_NOTE segments, or
// failing that in the SHT_NOTE sections.
func (f *elfFile) pvhEntry() (uint64, error) {
	var areas []elfSect
	for _, p := range f.progs {
		if p.typ == ptNote {
			areas = append(areas, elfSect{off: p.off, size: p.filesz, align: p.align})
		}
	}
	for _, s := range f.sects {
		if s.typ == shtNote {
			areas = append(areas, s)
		}
	}
	for _, a := range areas {
		b, err := sub(f.data, a.off, a.size, "note area")
		if err != nil {
			continue // a broken note area elsewhere must not hide a good one
		}
		desc, ok := findNote(b, a.align, "Xen", xenElfnotePhys32Entry)
		if !ok {
			continue
		}
		switch len(desc) {
		case 4:
			return uint64(binary.LittleEndian.Uint32(desc)), nil
		case 8:
			e := binary.LittleEndian.Uint64(desc)
			if e >= 1<<32 {
				return 0, fmt.Errorf("kernel: PVH entry %#x is above 4 GiB", e)
			}
			return e, nil
		}
		return 0, fmt.Errorf("kernel: XEN_ELFNOTE_PHYS32_ENTRY desc is %d bytes, want 4 or 8", len(desc))
	}
	return 0, ErrNoPVHNote
}

// findNote walks the notes in b (padded to 4 bytes, or 8 if align is 8)
// and returns the desc of the first with the given name and type.
func findNote(b []byte, align uint64, name string, typ uint32) ([]byte, bool) {
	pad := uint64(4)
	if align == 8 {
		pad = 8
	}
	up := func(n uint64) uint64 { return (n + pad - 1) &^ (pad - 1) }
	le := binary.LittleEndian
	for off := uint64(0); off+12 <= uint64(len(b)); {
		namesz, descsz, t := uint64(le.Uint32(b[off:])), uint64(le.Uint32(b[off+4:])), le.Uint32(b[off+8:])
		nameOff := off + 12
		descOff := nameOff + up(namesz)
		end := descOff + up(descsz)
		if descOff+descsz > uint64(len(b)) {
			return nil, false // truncated note: stop walking this area
		}
		n := bytes.TrimRight(b[nameOff:nameOff+namesz], "\x00")
		if t == typ && string(n) == name {
			return b[descOff : descOff+descsz], true
		}
		off = end
	}
	return nil, false
}
