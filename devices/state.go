package devices

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Snapshot state of the legacy devices. Each device saves what the guest
// can observe as one fixed-size struct (encoding/binary, little-endian;
// the snapshot's format version covers the layout) and restores it only
// after checking that the device could have held it. PVPanic and the
// debug-exit port have no state.

// decodeState fills v from b, which must be exactly v's size.
func decodeState(name string, b []byte, v any) error {
	if n := binary.Size(v); len(b) != n {
		return fmt.Errorf("%s state: %d bytes; want %d", name, len(b), n)
	}
	if _, err := binary.Decode(b, binary.LittleEndian, v); err != nil {
		return fmt.Errorf("%s state: %w", name, err)
	}
	return nil
}

func encodeState(v any) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, v)
	if err != nil {
		panic(err) // only a non-fixed-size type fails: a programming error
	}
	return b
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

type uartState struct {
	IER, LCR, MCR, SCR, FCR, DLL, DLM, LSRErr uint8
	RXLen                                     uint8
	RX                                        [uartFIFOSize]byte
	THREPending, Level                        uint8
}

// SaveState returns the UART's registers, its receive FIFO and its
// interrupt line level.
func (u *UART) SaveState() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := uartState{IER: u.ier, LCR: u.lcr, MCR: u.mcr, SCR: u.scr, FCR: u.fcr, DLL: u.dll, DLM: u.dlm,
		LSRErr: u.lsrErr, RXLen: uint8(len(u.rx)), THREPending: flag(u.threPending), Level: flag(u.level)}
	copy(s.RX[:], u.rx)
	return encodeState(&s)
}

// RestoreState sets the UART from SaveState's bytes. A line that was
// high is raised again, so KVM's view of it (not in the irqchip state)
// agrees with the UART's.
func (u *UART) RestoreState(b []byte) error {
	var s uartState
	if err := decodeState("COM1", b, &s); err != nil {
		return err
	}
	if s.RXLen > uartFIFOSize || s.IER > 0x0f || s.MCR > 0x1f || s.THREPending > 1 || s.Level > 1 || s.LSRErr&^lsrOE != 0 {
		return fmt.Errorf("COM1 state: impossible registers %+v", s)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ier, u.lcr, u.mcr, u.scr, u.fcr, u.dll, u.dlm, u.lsrErr = s.IER, s.LCR, s.MCR, s.SCR, s.FCR, s.DLL, s.DLM, s.LSRErr
	u.rx = append(u.rx[:0], s.RX[:s.RXLen]...)
	u.threPending = s.THREPending == 1
	u.level = s.Level == 1
	if u.level {
		u.irq(true)
	}
	return nil
}

type i8042State struct {
	CTR, Pending uint8
	OutLen       uint8
	Out          [16]byte
}

// SaveState returns the controller's configuration byte, output buffer
// and a command waiting for its data byte.
func (k *I8042) SaveState() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := i8042State{CTR: k.ctr, Pending: k.pending, OutLen: uint8(len(k.out))}
	copy(s.Out[:], k.out)
	return encodeState(&s)
}

// RestoreState sets the controller from SaveState's bytes.
func (k *I8042) RestoreState(b []byte) error {
	var s i8042State
	if err := decodeState("i8042", b, &s); err != nil {
		return err
	}
	if int(s.OutLen) > len(s.Out) || (s.Pending != 0 && s.Pending != 0x60 && s.Pending != 0xd1) {
		return fmt.Errorf("i8042 state: %d bytes in the output buffer, pending command %#x", s.OutLen, s.Pending)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ctr, k.pending = s.CTR, s.Pending
	k.out = append([]byte(nil), s.Out[:s.OutLen]...)
	return nil
}

type rtcState struct {
	Index            uint8
	CMOS             [rtcCMOSSize]byte
	OffSec, OffNsec  int64
	LastSec, LastCNs int64
}

// SaveState returns the RTC's index, registers and CMOS RAM, and the
// guest clock's offset from the host's. Restored, the guest clock keeps
// that offset: like a PC's RTC on battery, it has moved on by the time
// the VM was not running (QEMU's -rtc base=utc does the same).
func (r *RTC) SaveState() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return encodeState(&rtcState{Index: r.index, CMOS: r.cmos, OffSec: r.offSec, OffNsec: r.offNsec,
		LastSec: r.lastSec, LastCNs: r.lastC.UnixNano()})
}

// RestoreState sets the RTC from SaveState's bytes.
func (r *RTC) RestoreState(b []byte) error {
	var s rtcState
	if err := decodeState("RTC", b, &s); err != nil {
		return err
	}
	if s.Index >= rtcCMOSSize || s.OffNsec < 0 || s.OffNsec >= int64(time.Second) {
		return fmt.Errorf("RTC state: index %#x, offset %d s %d ns", s.Index, s.OffSec, s.OffNsec)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index, r.cmos, r.offSec, r.offNsec = s.Index, s.CMOS, s.OffSec, s.OffNsec
	r.lastSec, r.lastC = s.LastSec, time.Unix(0, s.LastCNs)
	return nil
}
