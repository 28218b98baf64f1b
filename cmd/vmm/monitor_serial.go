package main

// __org.vmm_query-serial, a QMP downstream extension for diagnosing a
// console that stopped: COM1 as the guest sees it, and its interrupt pin
// as KVM's IOAPIC holds it. A guest whose UART asks for an interrupt
// (level true) with bytes waiting, while the pin's IRR is set and
// nothing runs the handler, lost an edge on the way; a UART with an
// empty FIFO and no interrupt asked for points at the guest.

import (
	"fmt"

	"vmm/kvm"
	"vmm/machine"
	"vmm/qmp"
)

const serialQueryCommand = "__org.vmm_query-serial"

type serialInfo struct {
	IER         byte    `json:"ier"`
	IIR         byte    `json:"iir"`
	LCR         byte    `json:"lcr"`
	MCR         byte    `json:"mcr"`
	RXFIFO      int     `json:"rx-fifo"`
	THREPending bool    `json:"thre-pending"`
	Level       bool    `json:"line-level"`
	Raised      uint64  `json:"line-raised"`
	Received    uint64  `json:"bytes-to-guest"`
	Sent        uint64  `json:"bytes-from-guest"`
	Pin         pinInfo `json:"ioapic-pin"`
}

type pinInfo struct {
	Pin       int   `json:"pin"`
	Vector    uint8 `json:"vector"`
	Masked    bool  `json:"masked"`
	LevelTrig bool  `json:"level-triggered"`
	RemoteIRR bool  `json:"remote-irr"`
	IRR       bool  `json:"irr"`
	Dest      uint8 `json:"destination"`
}

func (mon *monitor) querySerial(*qmp.Call, *noArgs) (any, error) {
	u := mon.m.UART().Stats()
	c, err := mon.m.VM().IRQChip(kvm.IRQChipIOAPIC)
	if err != nil {
		return nil, fmt.Errorf("COM1's interrupt pin: %w", err)
	}
	p, err := c.Pin(machine.COM1IRQ)
	if err != nil {
		return nil, err
	}
	return serialInfo{IER: u.IER, IIR: u.IIR, LCR: u.LCR, MCR: u.MCR, RXFIFO: u.RXFIFO,
		THREPending: u.THREPending, Level: u.Level, Raised: u.Raised, Received: u.Received, Sent: u.Sent,
		Pin: pinInfo{Pin: machine.COM1IRQ, Vector: p.Vector, Masked: p.Masked, LevelTrig: p.LevelTrig,
			RemoteIRR: p.RemoteIRR, IRR: p.IRR, Dest: p.DestinationID}}, nil
}
