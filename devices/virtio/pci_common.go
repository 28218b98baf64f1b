package virtio

import "encoding/binary"

// readCommon reads the common configuration structure: it snapshots the
// fields under mu and copies the requested bytes, so any size and
// alignment reads consistently.
func (t *PCI) readCommon(offset uint64, data []byte) {
	var b [pciCommonSize]byte
	le := binary.LittleEndian
	t.mu.Lock()
	if t.devFeaturesSel < 2 {
		le.PutUint32(b[commonDF:], half(t.offered, uint64(t.devFeaturesSel)*4))
	}
	le.PutUint32(b[commonDFSelect:], t.devFeaturesSel)
	le.PutUint32(b[commonGFSelect:], t.drvFeaturesSel)
	if t.drvFeaturesSel < 2 {
		le.PutUint32(b[commonGF:], half(t.driverFeatures, uint64(t.drvFeaturesSel)*4))
	}
	le.PutUint16(b[commonMSIX:], uint16(t.irq.configVec.Load()))
	le.PutUint16(b[commonNumQ:], uint16(len(t.queues)))
	b[commonStatus] = byte(t.status)
	b[commonCfgGeneration] = byte(t.irq.generation.Load())
	le.PutUint16(b[commonQSelect:], uint16(t.queueSel))
	if q := t.selected(); q != nil {
		le.PutUint16(b[commonQSize:], q.Size())
		le.PutUint16(b[commonQMSIX:], uint16(t.irq.queueVec[t.queueSel].Load()))
		if q.Ready() {
			b[commonQEnable] = 1
		}
		le.PutUint16(b[commonQNOff:], uint16(t.queueSel))
		le.PutUint64(b[commonQDescLo:], q.DescAddr())
		le.PutUint64(b[commonQAvailLo:], q.AvailAddr())
		le.PutUint64(b[commonQUsedLo:], q.UsedAddr())
	}
	t.mu.Unlock()
	copy(data, b[offset:])
}

// commonWidth is the size of the field at each writable offset; 64-bit
// fields are written as two 32-bit halves (or one 8-byte store).
var commonWidth = map[uint64]int{
	commonDFSelect: 4, commonGFSelect: 4, commonGF: 4, commonMSIX: 2, commonStatus: 1,
	commonQSelect: 2, commonQSize: 2, commonQMSIX: 2, commonQEnable: 2,
	commonQDescLo: 8, commonQDescHi: 4, commonQAvailLo: 8, commonQAvailHi: 4, commonQUsedLo: 8, commonQUsedHi: 4,
}

// writeCommon stores to one field of the common configuration.
func (t *PCI) writeCommon(offset uint64, data []byte) {
	w, ok := commonWidth[offset]
	n := len(data)
	if !ok || n != w && !(w == 8 && n == 4) {
		t.ignored("write", offset, n)
		return
	}
	var b [8]byte
	copy(b[:], data)
	v := binary.LittleEndian.Uint64(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	switch offset {
	case commonDFSelect:
		t.devFeaturesSel = uint32(v)
	case commonGFSelect:
		t.drvFeaturesSel = uint32(v)
	case commonGF:
		if t.status&statusFeaturesOK != 0 || t.drvFeaturesSel >= 2 {
			t.ignored("write", offset, n)
			return
		}
		t.driverFeatures = setHalf(t.driverFeatures, uint64(t.drvFeaturesSel)*4, uint32(v))
	case commonMSIX:
		t.irq.configVec.Store(t.vector(v))
	case commonStatus:
		t.setStatus(uint32(v))
	case commonQSelect:
		t.queueSel = uint32(v)
	default:
		t.writeQueue(offset, n, v)
	}
}

// vector is the MSI-X vector the device accepts for a driver's choice:
// NO_VECTOR when it is not in the table (the driver reads it back).
func (t *PCI) vector(v uint64) uint32 {
	if v >= uint64(t.msix.Vectors()) {
		return pciNoVector
	}
	return uint32(v)
}

// selected is the queue queue_select names, or nil; mu must be held.
func (t *PCI) selected() *QueueConfig {
	if t.queueSel < uint32(len(t.queues)) {
		return t.queues[t.queueSel]
	}
	return nil
}

// writeQueue configures the selected queue, which only a driver that
// has not set DRIVER_OK may do, and only while it is not enabled (the
// vector may change at any time: Linux moves it when it re-balances);
// mu must be held.
func (t *PCI) writeQueue(offset uint64, n int, v uint64) {
	q := t.selected()
	if q == nil {
		t.ignored("write", offset, n)
		return
	}
	if offset == commonQMSIX {
		t.irq.queueVec[t.queueSel].Store(t.vector(v))
		return
	}
	if t.status&statusDriverOK != 0 || q.Ready() && offset != commonQEnable {
		t.ignored("write", offset, n)
		return
	}
	set := func(get func() uint64, put func(uint64)) {
		if n == 8 {
			put(v)
		} else {
			put(setHalf(get(), offset, uint32(v)))
		}
	}
	switch offset {
	case commonQSize:
		q.SetSize(uint16(v))
	case commonQEnable:
		q.SetReady(v&1 != 0)
	case commonQDescLo, commonQDescHi:
		set(q.DescAddr, q.SetDescAddr)
	case commonQAvailLo, commonQAvailHi:
		set(q.AvailAddr, q.SetAvailAddr)
	case commonQUsedLo, commonQUsedHi:
		set(q.UsedAddr, q.SetUsedAddr)
	}
}
