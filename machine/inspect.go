package machine

import (
	"fmt"

	"vmm/kvm"
)

// VCPUInspect is what a vCPU was doing, for diagnosing a guest that
// stopped making progress: halted with an interrupt lost on the way, or
// with no timer armed, or running in a loop.
type VCPUInspect struct {
	ID          int
	MPState     string // runnable, halted, …
	RIP, RFLAGS uint64
	// The local APIC: its timer (LVT entry, counts, the TSC deadline
	// against the TSC now) and the vectors pending and in service.
	LVTTimer              uint32
	TimerInit, TimerCount uint32
	TSCDeadline, TSC      uint64
	TPR                   uint32
	Pending, InService    []uint8
	// An interrupt or NMI KVM holds for injection.
	InterruptInjected bool
	InterruptNr       uint8
	NMIPending        bool
}

// msrTSC is IA32_TIME_STAMP_COUNTER: the TSC to compare a deadline with.
const msrTSC = 0x10

var mpStates = map[uint32]string{kvm.MPStateRunnable: "runnable", kvm.MPStateUninitialized: "uninitialized",
	kvm.MPStateInitReceived: "init-received", kvm.MPStateHalted: "halted", kvm.MPStateSIPIReceived: "sipi-received"}

// InspectVCPUs pauses the VM (if it runs), reads every vCPU's state on
// its own thread, and lets it run again.
func (m *Machine) InspectVCPUs() ([]VCPUInspect, error) {
	if m.Pause() {
		defer m.Resume()
	}
	out := make([]VCPUInspect, m.cfg.CPUs)
	err := m.onVCPUThreads(func(v *vcpu) error {
		r, err := v.cpu.Regs()
		if err != nil {
			return err
		}
		mp, err := v.cpu.MPState()
		if err != nil {
			return err
		}
		l, err := v.cpu.LAPIC()
		if err != nil {
			return err
		}
		ev, err := v.cpu.Events()
		if err != nil {
			return err
		}
		msrs := []kvm.MSREntry{{Index: msrTSCDeadline}, {Index: msrTSC}}
		if err := v.cpu.MSRs(msrs); err != nil {
			return err
		}
		s := VCPUInspect{ID: v.id, MPState: mpStates[mp], RIP: r.RIP, RFLAGS: r.RFLAGS,
			LVTTimer: l.LVTTimer(), TPR: l.TPR(), Pending: l.Pending(), InService: l.InService(),
			TSCDeadline: msrs[0].Data, TSC: msrs[1].Data,
			InterruptInjected: ev.InterruptInjected != 0, InterruptNr: ev.InterruptNr, NMIPending: ev.NMIPending != 0}
		s.TimerInit, s.TimerCount = l.TimerCounts()
		if s.MPState == "" {
			s.MPState = fmt.Sprint(mp)
		}
		out[v.id] = s
		return nil
	})
	return out, err
}
