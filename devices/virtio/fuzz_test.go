package virtio

import (
	"encoding/binary"
	"errors"
	"testing"

	"vmm/devices/virtio/virtiotest"
)

// Fuzz input for FuzzQueuePop: log2 size, flags, then the descriptor
// table (16*size bytes), the avail ring (6+2*size bytes) and the start
// of the data area (indirect tables), each cut short if data ends.
const (
	fuzzEventIdx = 1 << iota
	fuzzIndirect
	fuzzHold     // keep chains until the end instead of pushing each
	fuzzNotifOff // pop with notifications disabled
)

// queueSeed lays out chains with the test driver and encodes the result.
func queueSeed(tb testing.TB, logSize byte, flags byte, build func(d *driver)) []byte {
	d := newDriver(tb, 1<<logSize, fuzzFeatures(flags), nil)
	build(d)
	b := []byte{logSize, flags}
	for _, a := range fuzzAreas(d.Size) {
		b = append(b, d.Mem[a.addr:a.addr+a.n]...)
	}
	return b
}

type area struct{ addr, n uint64 }

// fuzzAreas are where FuzzQueuePop puts its input.
func fuzzAreas(size uint16) []area {
	n := uint64(size)
	return []area{{tDesc, 16 * n}, {tAvail, 6 + 2*n}, {tData, 256}}
}

func fuzzFeatures(flags byte) uint64 {
	var f uint64
	if flags&fuzzEventIdx != 0 {
		f |= FeatureRingEventIdx
	}
	if flags&fuzzIndirect != 0 {
		f |= FeatureRingIndirectDesc
	}
	return f
}

func FuzzQueuePop(f *testing.F) {
	f.Add(queueSeed(f, 3, 0, func(d *driver) { d.Add(r(16), w(32)); d.Add(w(8)) }))
	f.Add(queueSeed(f, 4, fuzzIndirect|fuzzEventIdx, func(d *driver) {
		d.AddIndirect(r(4), r(4), w(100))
		d.Add(r(1), r(0), w(2))
	}))
	f.Add(queueSeed(f, 1, fuzzHold|fuzzNotifOff, func(d *driver) { d.Add(r(1)); d.Add(w(1)) }))
	f.Fuzz(fuzzQueueBody)
}

func fuzzQueueBody(t *testing.T, data []byte) {
	if len(data) < 2 {
		return
	}
	size, flags := uint16(1)<<(data[0]%9), data[1]
	mem := make(virtiotest.Mem, tMemSize)
	data = data[2:]
	for _, a := range fuzzAreas(size) {
		data = data[copy(mem[a.addr:a.addr+a.n], data):]
	}
	captureLog(t)
	d := newDriver(t, size, fuzzFeatures(flags), mem)
	if flags&fuzzNotifOff != 0 {
		d.q.DisableNotifications()
	}
	var held []*Chain
	for range 2*int(size) + 2 {
		c, err := d.q.Pop()
		if err != nil {
			if !errors.Is(err, ErrBroken) || d.q.Broken() != err {
				t.Fatalf("Pop() = %v with Broken() = %v; want an ErrBroken, the same", err, d.q.Broken())
			}
			break
		}
		if c == nil {
			if !d.q.EnableNotifications() {
				break
			}
			continue
		}
		checkChain(t, c, size)
		if flags&fuzzHold != 0 {
			held = append(held, c)
			continue
		}
		if err := d.q.PushUsed(c, c.WritableLen); err != nil && d.q.Broken() == nil {
			t.Fatalf("PushUsed() = %v; want nil", err)
		}
		d.q.NeedsInterrupt()
	}
	for _, c := range held {
		d.q.PushUsed(c, 0)
	}
	d.q.NeedsInterrupt()
}

// checkChain verifies a popped chain's bookkeeping.
func checkChain(t *testing.T, c *Chain, size uint16) {
	t.Helper()
	sum := func(bs [][]byte) (n uint64) {
		for _, b := range bs {
			if len(b) == 0 {
				t.Errorf("chain has an empty buffer")
			}
			n += uint64(len(b))
		}
		return n
	}
	if c.Head >= size || sum(c.Readable) != uint64(c.ReadableLen) || sum(c.Writable) != uint64(c.WritableLen) {
		t.Errorf("Pop() = head %d, lengths %d/%d for buffers %d/%d; want consistent", c.Head, c.ReadableLen, c.WritableLen, sum(c.Readable), sum(c.Writable))
	}
}

// mmioOp is one register access in FuzzMMIOAccess input: 7 bytes of
// kind (bit 7 write, bit 6 register-aligned offset, low 3 bits size),
// offset (u16) and value (u32).
type mmioOp struct {
	kind   byte
	offset uint16
	value  uint32
}

const (
	opWrite = 0x80
	opReg   = 0x40
)

var opSizes = [8]int{4, 1, 2, 8, 4, 3, 0, 16}

func encodeOps(ops ...mmioOp) []byte {
	var b []byte
	for _, o := range ops {
		b = append(b, o.kind)
		b = binary.LittleEndian.AppendUint16(b, o.offset)
		b = binary.LittleEndian.AppendUint32(b, o.value)
	}
	return b
}

// bringUpOps is the register sequence of a driver bringing up queue 0.
func bringUpOps(features uint64) []mmioOp {
	w := func(off uint16, v uint32) mmioOp { return mmioOp{opWrite | opReg, off, v} }
	return []mmioOp{
		w(regStatus, 1), w(regStatus, 3),
		w(regDriverFeaturesSel, 0), w(regDriverFeatures, uint32(features)),
		w(regDriverFeaturesSel, 1), w(regDriverFeatures, uint32(features>>32)),
		w(regStatus, 11),
		w(regQueueSel, 0), w(regQueueNum, 8),
		w(regQueueDescLow, tDesc), w(regQueueDriverLow, tAvail), w(regQueueDeviceLow, tUsed),
		w(regQueueReady, 1), w(regStatus, 15),
		w(regQueueNotify, 0),
	}
}

func FuzzMMIOAccess(f *testing.F) {
	f.Add(encodeOps(bringUpOps(FeatureVersion1 | FeatureRingEventIdx)...))
	f.Add(encodeOps(append(bringUpOps(FeatureVersion1), mmioOp{opWrite | opReg, regStatus, 0}, mmioOp{opReg, regQueueNumMax, 0})...))
	f.Add(encodeOps(mmioOp{opWrite | 1, 0x103, 7}, mmioOp{3, 0x100, 0}, mmioOp{2, 0xfff, 0}, mmioOp{opWrite, 0x70, 0x40}))
	f.Fuzz(func(t *testing.T, data []byte) {
		captureLog(t)
		dev := testDevice()
		mem := make(virtiotest.Mem, tMemSize)
		m, err := NewMMIO(dev, mem, &fakeKVM{}, tBase, 5)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		// Give the driver's rings something to chew on.
		copy(mem, data)
		for ; len(data) >= 7; data = data[7:] {
			o := mmioOp{data[0], binary.LittleEndian.Uint16(data[1:]), binary.LittleEndian.Uint32(data[3:])}
			off := uint64(o.offset)
			if o.kind&opReg != 0 {
				off = off % regConfig &^ 3
			}
			buf := make([]byte, opSizes[o.kind&7])
			for i := range buf {
				buf[i] = byte(o.value >> (8 * (i % 4)))
			}
			if o.kind&opWrite != 0 {
				m.Write(off, buf)
			} else {
				m.Read(off, buf)
			}
			if n := len(dev.activations); n > 0 {
				drain(dev.activations[n-1])
			}
		}
	})
}

// drain pops and completes a few chains of each active queue, as a device
// would after a kick.
func drain(ctx ActivateContext) {
	for _, q := range ctx.Queues {
		if q == nil {
			continue // not enabled by the driver
		}
		for range 4 {
			c, err := q.Pop()
			if c == nil || err != nil {
				break
			}
			q.PushUsed(c, 0)
			if q.NeedsInterrupt() {
				ctx.Interrupt.Signal(q.Index())
			}
		}
	}
}
