package virtio

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Descriptor flags (virtio 1.2 §2.7.5).
const (
	descFNext     = 1
	descFWrite    = 2
	descFIndirect = 4
)

const descSize = 16

// maxIndirect is the longest indirect table walked: next is a u16, so
// entries past 65536 are unreachable.
const maxIndirect = 1 << 16

// Chain is one descriptor chain popped from a queue. Its buffers alias
// guest memory. After PushUsed it belongs to the queue again and must
// not be used.
type Chain struct {
	Head     uint16
	Readable [][]byte // driver-to-device buffers (the device reads them)
	Writable [][]byte // device-to-driver buffers (the device writes them)

	ReadableLen, WritableLen uint32

	q *Queue // owner while popped; nil once pushed (a ring stopped by a reset rejects it)
}

type desc struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

func readDesc(table []byte, i uint16) desc {
	b := table[int(i)*descSize:][:descSize]
	return desc{
		addr:  binary.LittleEndian.Uint64(b[0:]),
		len:   binary.LittleEndian.Uint32(b[8:]),
		flags: binary.LittleEndian.Uint16(b[12:]),
		next:  binary.LittleEndian.Uint16(b[14:]),
	}
}

// walker collects one chain's buffers; a chain may continue from the
// queue's table into one indirect table.
type walker struct {
	mem       Memory
	indirect  bool // VIRTIO_F_RING_INDIRECT_DESC negotiated
	c         *Chain
	total     uint64 // bytes in the chain, capped at MaxUint32
	seenWrite bool   // a writable descriptor came already
}

// walk fills w.c from the chain starting at head in table (size entries).
func (w *walker) walk(table []byte, size int, head uint16) error {
	inIndirect := false
	limit := size // descriptors allowed in the current table
	i := head
	for n := 0; ; n++ {
		if n >= limit {
			return fmt.Errorf("chain at head %d is longer than %d descriptors (a loop?)", head, limit)
		}
		d := readDesc(table, i)
		if d.flags&descFIndirect != 0 {
			t, err := w.indirectTable(d, inIndirect)
			if err != nil {
				return fmt.Errorf("descriptor %d: %w", i, err)
			}
			table, limit, i, n, inIndirect = t, len(t)/descSize, 0, -1, true
			continue
		}
		if err := w.add(d); err != nil {
			return fmt.Errorf("descriptor %d: %w", i, err)
		}
		if d.flags&descFNext == 0 {
			return nil
		}
		if int(d.next) >= limit {
			return fmt.Errorf("descriptor %d: next %d out of range (table of %d)", i, d.next, limit)
		}
		i = d.next
	}
}

// indirectTable validates an indirect descriptor and maps its table.
func (w *walker) indirectTable(d desc, nested bool) ([]byte, error) {
	switch {
	case !w.indirect:
		return nil, fmt.Errorf("indirect descriptor but VIRTIO_F_RING_INDIRECT_DESC not negotiated")
	case nested:
		return nil, fmt.Errorf("indirect descriptor inside an indirect table")
	case d.flags&descFNext != 0:
		return nil, fmt.Errorf("indirect descriptor with NEXT set")
	case d.len == 0 || d.len%descSize != 0:
		return nil, fmt.Errorf("indirect table length %d is not a non-zero multiple of %d", d.len, descSize)
	}
	t, err := w.slice(d)
	if err != nil {
		return nil, fmt.Errorf("indirect table: %w", err)
	}
	return t[:min(len(t), maxIndirect*descSize)], nil
}

// add appends one buffer descriptor. Zero-length ones carry no buffer
// but still count for the readable-before-writable order.
func (w *walker) add(d desc) error {
	write := d.flags&descFWrite != 0
	if !write && w.seenWrite {
		return fmt.Errorf("readable descriptor after a writable one")
	}
	w.seenWrite = w.seenWrite || write
	if d.len == 0 {
		return nil
	}
	w.total += uint64(d.len)
	if w.total > math.MaxUint32 {
		return fmt.Errorf("chain holds more than %d bytes", uint32(math.MaxUint32))
	}
	b, err := w.slice(d)
	if err != nil {
		return err
	}
	c := w.c
	if write {
		c.Writable = append(c.Writable, b)
		c.WritableLen += d.len
	} else {
		c.Readable = append(c.Readable, b)
		c.ReadableLen += d.len
	}
	return nil
}

func (w *walker) slice(d desc) ([]byte, error) {
	if d.addr > math.MaxUint64-uint64(d.len) {
		return nil, fmt.Errorf("buffer %#x+%#x overflows the address space", d.addr, d.len)
	}
	b, err := w.mem.Slice(d.addr, uint64(d.len))
	if err != nil {
		return nil, fmt.Errorf("buffer %#x+%#x: %w", d.addr, d.len, err)
	}
	return b, nil
}
