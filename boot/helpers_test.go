package boot

import (
	"encoding/binary"
	"fmt"
)

// testMem is a Memory backed by one []byte per RAM range.
type testMem struct {
	ram  []Range
	bufs [][]byte
}

func newTestMem(ram ...Range) *testMem {
	m := &testMem{ram: ram}
	for _, r := range ram {
		m.bufs = append(m.bufs, make([]byte, r.Size))
	}
	return m
}

// lowMem is RAM [0, size).
func lowMem(size uint64) *testMem { return newTestMem(Range{0, size}) }

func (m *testMem) Slice(addr, n uint64) ([]byte, error) {
	for i, r := range m.ram {
		if addr >= r.Start && addr-r.Start <= r.Size && n <= r.Size-(addr-r.Start) {
			off := addr - r.Start
			return m.bufs[i][off : off+n : off+n], nil
		}
	}
	return nil, fmt.Errorf("[%#x, +%#x) is not RAM", addr, n)
}

// bytes returns guest memory [addr, addr+n), panicking if absent (tests only).
func (m *testMem) bytes(addr, n uint64) []byte {
	b, err := m.Slice(addr, n)
	if err != nil {
		panic(err)
	}
	return b
}

func (m *testMem) u8(addr uint64) uint64 { return uint64(m.bytes(addr, 1)[0]) }
func (m *testMem) u16(addr uint64) uint64 {
	return uint64(binary.LittleEndian.Uint16(m.bytes(addr, 2)))
}
func (m *testMem) u32(addr uint64) uint64 {
	return uint64(binary.LittleEndian.Uint32(m.bytes(addr, 4)))
}
func (m *testMem) u64(addr uint64) uint64 { return binary.LittleEndian.Uint64(m.bytes(addr, 8)) }

// bzOpts describes a synthetic bzImage.
type bzOpts struct {
	version     uint16
	xloadflags  uint16
	loadflags   uint8
	setupSects  uint8
	jumpLen     uint8 // header end - 0x202
	initSize    uint32
	initrdMax   uint32
	cmdlineSize uint32
	align       uint32
	reloc       uint8
	pref        uint64
	kernelLen   int
}

// defaultBz is shaped like Debian's kernel, scaled down.
func defaultBz() bzOpts {
	return bzOpts{
		version: 0x20f, xloadflags: 0x7f, loadflags: loadedHigh, setupSects: 2, jumpLen: 0x6a,
		initSize: 0x800000, initrdMax: 0x7fffffff, cmdlineSize: 0x7ff, align: 0x200000, reloc: 1,
		pref: 0x1000000, kernelLen: 0x10000,
	}
}

// kernelPattern is the protected-mode kernel's content: recognisable bytes.
func kernelPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func makeBzImage(o bzOpts) []byte {
	sects := int(o.setupSects)
	if sects == 0 {
		sects = 4
	}
	b := make([]byte, (sects+1)*512)
	le := binary.LittleEndian
	b[0x1f1] = o.setupSects
	le.PutUint16(b[0x1fe:], 0xAA55)
	b[0x200], b[0x201] = 0xEB, o.jumpLen
	copy(b[0x202:], "HdrS")
	le.PutUint16(b[0x206:], o.version)
	b[0x211] = o.loadflags
	le.PutUint32(b[0x214:], 0x100000) // code32_start
	le.PutUint32(b[0x22c:], o.initrdMax)
	le.PutUint32(b[0x230:], o.align)
	b[0x234] = o.reloc
	b[0x235] = 21
	le.PutUint16(b[0x236:], o.xloadflags)
	le.PutUint32(b[0x238:], o.cmdlineSize)
	le.PutUint64(b[0x258:], o.pref)
	le.PutUint32(b[0x260:], o.initSize)
	return append(b, kernelPattern(o.kernelLen)...)
}

// elfSeg is one PT_LOAD of a synthetic ELF.
type elfSeg struct {
	paddr  uint64
	data   []byte
	memsz  uint64
	offset int64 // if nonzero, overrides p_offset (for hostile files)
}

// elfOpts describes a synthetic ELF.
type elfOpts struct {
	class32       bool
	segs          []elfSeg
	note          []byte // note area contents
	noteInSection bool   // describe the notes by a SHT_NOTE section, not PT_NOTE
}

func makeNote(name string, typ uint32, desc []byte) []byte {
	pad := func(b []byte) []byte {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	n := []byte(name + "\x00")
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b, uint32(len(n)))
	binary.LittleEndian.PutUint32(b[4:], uint32(len(desc)))
	binary.LittleEndian.PutUint32(b[8:], typ)
	b = append(b, pad(n)...)
	return append(b, pad(append([]byte(nil), desc...))...)
}

func pvhNote(entry uint64) []byte {
	d := make([]byte, 8)
	binary.LittleEndian.PutUint64(d, entry)
	return makeNote("Xen", xenElfnotePhys32Entry, d)
}

func makeELF(o elfOpts) []byte {
	le := binary.LittleEndian
	ehsize, phsize, shsize := 64, 56, 64
	if o.class32 {
		ehsize, phsize, shsize = 52, 32, 40
	}
	nph := len(o.segs)
	if !o.noteInSection {
		nph++
	}
	noteOff := ehsize + nph*phsize
	dataOff := noteOff + len(o.note)
	b := make([]byte, dataOff)
	copy(b, elfMagic)
	b[4], b[5], b[6] = 2, 1, 1
	if o.class32 {
		b[4] = 1
	}
	le.PutUint16(b[16:], 2) // ET_EXEC
	machine := uint16(emX8664)
	if o.class32 {
		machine = emI386
	}
	le.PutUint16(b[18:], machine)
	le.PutUint32(b[20:], 1)
	copy(b[noteOff:], o.note)

	phdr := func(i int, typ uint32, off, paddr, filesz, memsz, align uint64) {
		p := b[ehsize+i*phsize:]
		if o.class32 {
			le.PutUint32(p, typ)
			le.PutUint32(p[4:], uint32(off))
			le.PutUint32(p[8:], uint32(paddr))
			le.PutUint32(p[12:], uint32(paddr))
			le.PutUint32(p[16:], uint32(filesz))
			le.PutUint32(p[20:], uint32(memsz))
			le.PutUint32(p[28:], uint32(align))
			return
		}
		le.PutUint32(p, typ)
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], paddr|0xffffffff80000000)
		le.PutUint64(p[24:], paddr)
		le.PutUint64(p[32:], filesz)
		le.PutUint64(p[40:], memsz)
		le.PutUint64(p[48:], align)
	}
	for i, s := range o.segs {
		off := uint64(len(b))
		b = append(b, s.data...)
		if s.offset != 0 {
			off = uint64(s.offset)
		}
		phdr(i, ptLoad, off, s.paddr, uint64(len(s.data)), s.memsz, 0x1000)
	}
	if !o.noteInSection {
		phdr(len(o.segs), ptNote, uint64(noteOff), 0, uint64(len(o.note)), uint64(len(o.note)), 4)
	}

	var shoff int
	nsh := 0
	if o.noteInSection {
		shoff, nsh = len(b), 2
		b = append(b, make([]byte, 2*shsize)...)
		s := b[shoff+shsize:]
		if o.class32 {
			le.PutUint32(s[4:], shtNote)
			le.PutUint32(s[16:], uint32(noteOff))
			le.PutUint32(s[20:], uint32(len(o.note)))
			le.PutUint32(s[32:], 4)
		} else {
			le.PutUint32(s[4:], shtNote)
			le.PutUint64(s[24:], uint64(noteOff))
			le.PutUint64(s[32:], uint64(len(o.note)))
			le.PutUint64(s[48:], 4)
		}
	}
	if o.class32 {
		le.PutUint32(b[28:], uint32(ehsize))
		le.PutUint32(b[32:], uint32(shoff))
		le.PutUint16(b[40:], uint16(ehsize))
		le.PutUint16(b[42:], uint16(phsize))
		le.PutUint16(b[44:], uint16(nph))
		le.PutUint16(b[46:], uint16(shsize))
		le.PutUint16(b[48:], uint16(nsh))
	} else {
		le.PutUint64(b[32:], uint64(ehsize))
		le.PutUint64(b[40:], uint64(shoff))
		le.PutUint16(b[52:], uint16(ehsize))
		le.PutUint16(b[54:], uint16(phsize))
		le.PutUint16(b[56:], uint16(nph))
		le.PutUint16(b[58:], uint16(shsize))
		le.PutUint16(b[60:], uint16(nsh))
	}
	return b
}

// defaultPVH is a small PVH kernel: text at 1 MiB with its entry, and a
// data segment with a bss tail.
func defaultPVH() elfOpts {
	return elfOpts{
		segs: []elfSeg{
			{paddr: 0x100000, data: kernelPattern(0x3000), memsz: 0x3000},
			{paddr: 0x200000, data: kernelPattern(0x1000), memsz: 0x5000},
		},
		note: append(makeNote("GNU", 3, []byte{1, 2, 3, 4}), pvhNote(0x100040)...),
	}
}
