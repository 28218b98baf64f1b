package virtioserial

import (
	"encoding/binary"
	"testing"
)

// FuzzControlMessages feeds arbitrary control messages (any port id,
// event and value, in any order and length) from the guest side through
// the control TX queue. The device must never panic, must keep its
// pending queue bounded, and must keep answering a well-formed driver.
func FuzzControlMessages(f *testing.F) {
	msg := func(id uint32, ev, val uint16) []byte {
		return controlMsg{id: id, event: ev, value: val}.encode()
	}
	f.Add(msg(0, eventDeviceReady, 1))
	f.Add(append(msg(0, eventDeviceReady, 1), msg(1, eventPortReady, 1)...))
	f.Add(append(msg(1, eventPortOpen, 1), msg(1, eventPortOpen, 0)...))
	f.Add(msg(0xffffffff, eventPortReady, 1))
	f.Add([]byte{1, 2, 3})
	r := newRig(f, 3, PortConfig{Nr: -1, Name: "a"}, PortConfig{Nr: -1, Console: true, Name: "c"})
	r.be["a"].connect(f)
	r.fillControl()
	f.Fuzz(func(t *testing.T, data []byte) {
		r.t = t
		// Messages of 8 bytes, and whatever is left as one short one.
		for len(data) > 0 {
			n := min(len(data), controlHeaderSize)
			if len(data) >= 12 {
				n = int(binary.LittleEndian.Uint16(data[8:])%16) + 1 // lengths other than 8 too
			}
			n = min(n, len(data))
			r.reap(ctrlTxQueue)
			if !r.add(ctrlTxQueue, data[:n], 0) {
				break
			}
			data = data[n:]
		}
		r.kick(ctrlTxQueue)
		r.readControl()
		r.dev.mu.Lock()
		pending := len(r.dev.ctrlPending)
		r.dev.mu.Unlock()
		if pending > maxPendingControl {
			t.Fatalf("%d control messages pending; bound is %d", pending, maxPendingControl)
		}
	})
}
