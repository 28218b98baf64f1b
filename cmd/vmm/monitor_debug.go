package main

// QMP downstream extensions for diagnosing a guest that stopped making
// progress.
//
// __org.vmm_query-serial: COM1 as the guest sees it, and its interrupt
// pin as KVM's IOAPIC holds it. A guest whose UART asks for an interrupt
// (level true) with bytes waiting, while the pin's IRR is set and
// nothing runs the handler, lost an edge on the way; a UART with an
// empty FIFO and no interrupt asked for points at the guest.
//
// __org.vmm_query-vcpus: each vCPU's run state, rip and flags, its
// local APIC timer and pending and in-service vectors, read with the VM
// paused for a moment (a paused VM stays paused). A halted vCPU with
// interrupts enabled, no timer armed and nothing pending sleeps for
// good; one with a vector pending that never arrives lost a delivery.

import (
	"fmt"

	"vmm/kvm"
	"vmm/machine"
	"vmm/qmp"
)

const (
	serialQueryCommand = "__org.vmm_query-serial"
	vcpuQueryCommand   = "__org.vmm_query-vcpus"
)

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

type vcpuInfo struct {
	CPU               int    `json:"cpu-index"`
	State             string `json:"mp-state"`
	RIP               string `json:"rip"`
	IF                bool   `json:"interrupts-enabled"`
	LVTTimer          string `json:"lvt-timer"`
	TimerInit         uint32 `json:"timer-initial-count"`
	TimerCount        uint32 `json:"timer-current-count"`
	TSCDeadline       uint64 `json:"tsc-deadline"`
	TSC               uint64 `json:"tsc"`
	TPR               uint32 `json:"tpr"`
	Pending           []int  `json:"irr"` // vectors ([]uint8 would be base64)
	InService         []int  `json:"isr"`
	InterruptInjected bool   `json:"interrupt-injected"`
	InterruptNr       uint8  `json:"interrupt-nr"`
	NMIPending        bool   `json:"nmi-pending"`
}

func (mon *monitor) queryVCPUs(*qmp.Call, *noArgs) (any, error) {
	cpus, err := mon.m.InspectVCPUs()
	if err != nil {
		return nil, fmt.Errorf("vCPU state: %w", err)
	}
	out := make([]vcpuInfo, len(cpus))
	for i, c := range cpus {
		out[i] = vcpuInfo{CPU: c.ID, State: c.MPState, RIP: fmt.Sprintf("%#x", c.RIP), IF: c.RFLAGS&(1<<9) != 0,
			LVTTimer: fmt.Sprintf("%#x", c.LVTTimer), TimerInit: c.TimerInit, TimerCount: c.TimerCount,
			TSCDeadline: c.TSCDeadline, TSC: c.TSC, TPR: c.TPR, Pending: vectors(c.Pending), InService: vectors(c.InService),
			InterruptInjected: c.InterruptInjected, InterruptNr: c.InterruptNr, NMIPending: c.NMIPending}
	}
	return out, nil
}

func vectors(v []uint8) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}
