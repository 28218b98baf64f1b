package machine

import "sync"

// Pause and resume (QMP stop and cont): a paused VM holds every vCPU out
// of KVM_RUN. Devices and chardevs keep running and keep their state, so
// data the guest already queued keeps moving and nothing is lost; the
// guest simply executes nothing until Resume.

// pauseState is the vCPUs' run/hold switch.
type pauseState struct {
	mu   sync.Mutex
	cond *sync.Cond // signalled on every change below; uses mu
	// The fields below are guarded by mu.
	paused bool
	parked int // vCPUs waiting in hold
	gone   int // vCPU goroutines that ended (or never ran)
}

func (p *pauseState) init() { p.cond = sync.NewCond(&p.mu) }

// Pause stops guest execution and returns once no vCPU is in KVM_RUN
// (or the VM has ended). It reports false if it was already paused.
func (m *Machine) Pause() bool {
	p := &m.pause
	p.mu.Lock()
	if p.paused {
		p.mu.Unlock()
		return false
	}
	p.paused = true
	p.mu.Unlock()
	m.mu.Lock()
	for _, v := range m.vcpus {
		v.kick()
	}
	m.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.parked+p.gone < m.cfg.CPUs && !m.stopping.Load() {
		p.cond.Wait()
	}
	return true
}

// Resume lets the vCPUs run again. It reports false if the VM was not
// paused.
func (m *Machine) Resume() bool {
	// Devices a snapshot left frozen (Snapshot) move data again, before
	// the guest runs.
	m.Thaw()
	p := &m.pause
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		return false
	}
	p.paused = false
	p.cond.Broadcast()
	return true
}

// Paused reports whether the VM is paused.
func (m *Machine) Paused() bool {
	m.pause.mu.Lock()
	defer m.pause.mu.Unlock()
	return m.pause.paused
}

// hold parks the calling vCPU while the VM is paused; true if it did,
// so the caller re-checks whether the VM is stopping before running.
func (v *vcpu) hold() bool {
	p := &v.m.pause
	p.mu.Lock()
	if !p.paused {
		p.mu.Unlock()
		return false
	}
	p.parked++
	p.cond.Broadcast()
	for {
		if v.call != nil { // a call posted while parked runs before leaving
			v.runCall()
			continue
		}
		if !p.paused || v.m.stopping.Load() {
			break
		}
		p.cond.Wait()
	}
	p.parked--
	p.mu.Unlock()
	v.clockCtrl()
	// Pause's kick left immediate_exit set; a stop that comes now sets
	// it again after this, and the caller sees stopping first anyway.
	v.cpu.Run().SetImmediateExit(false)
	return true
}

// vcpuGone counts a vCPU goroutine that will not run again.
func (m *Machine) vcpuGone() {
	m.pause.mu.Lock()
	m.pause.gone++
	m.pause.cond.Broadcast()
	m.pause.mu.Unlock()
}

// wakeHeld releases paused vCPUs and a waiting Pause when the VM stops.
func (m *Machine) wakeHeld() {
	m.pause.mu.Lock()
	m.pause.cond.Broadcast()
	m.pause.mu.Unlock()
}
