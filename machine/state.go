package machine

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"vmm/devices/virtio"
	"vmm/kvm"
	"vmm/snapshot"
)

// Snapshots: the KVM half of a VM's state (per vCPU and VM-wide) is
// saved while the VM is paused and restored by New before any vCPU runs.
// vCPU ioctls are issued on each vCPU's own thread, as KVM asks.

// MSRs whose restore depends on others: KVM primes the TSC deadline timer
// from the TSC, so the deadline is written after everything else.
const msrTSCDeadline = 0x6e0

// errNotPaused is SaveState's refusal on a running VM.
var errNotPaused = errors.New("the VM is running: pause it first (stop)")

// SaveState returns the VM's KVM state: every vCPU's registers, FPU or
// XSAVE area, XCRs, MSRs (the TSC and kvmclock's among them), LAPIC, MP
// state, debug registers and pending events, and the VM's PIC, IOAPIC,
// PIT and kvmclock. The VM must be paused; devices must not raise
// interrupts meanwhile (the caller runs it on the event loop). machine
// is the caller's description of the machine and device set, which a
// restore must match (snapshot.Identity).
func (m *Machine) SaveState(machine string) (*snapshot.State, error) {
	msrs, err := m.sys.MSRIndexList()
	if err != nil {
		return nil, err
	}
	xsave, err := m.sys.CheckExtension(kvm.CapXSave)
	if err != nil {
		return nil, err
	}
	xcrs, err := m.sys.CheckExtension(kvm.CapXCRs)
	if err != nil {
		return nil, err
	}
	st := &snapshot.State{
		Identity: snapshot.Identity{MemSize: m.mem.Size(), CPUs: m.cfg.CPUs, Machine: machine},
		VCPUs:    make([]snapshot.VCPU, m.cfg.CPUs),
	}
	err = m.onVCPUThreads(func(v *vcpu) error {
		return v.save(&st.VCPUs[v.id], msrs, xsave > 0, xcrs > 0)
	})
	if err != nil {
		return nil, err
	}
	// The VM-wide state after the vCPUs': reading a LAPIC can deliver a
	// pending INIT/SIPI, never the other way round.
	if st.VM, err = m.saveVM(); err != nil {
		return nil, err
	}
	for _, d := range m.legacyDevices() {
		st.Devices = append(st.Devices, snapshot.Device{Name: d.name, Data: d.dev.SaveState()})
	}
	// The virtio devices last: each is frozen from its save until Thaw,
	// so that RAM written afterwards agrees with its rings.
	for _, t := range m.transports() {
		b, err := t.dev.SaveState()
		if err != nil {
			m.Thaw()
			return nil, err
		}
		st.Devices = append(st.Devices, snapshot.Device{Name: t.name, Data: b})
	}
	return st, nil
}

// transportState is a virtio transport whose state, and its device's,
// snapshots carry (virtio.MMIO, virtio.PCI).
type transportState interface {
	SaveState() ([]byte, error)
	RestoreState([]byte) error
	Thaw()
}

type namedTransport struct {
	name string
	dev  transportState
}

// transports are the virtio transports in the order New placed them,
// named by kind and position ("virtio-mmio.0", "virtio-pci.0").
func (m *Machine) transports() []namedTransport {
	var out []namedTransport
	var nmmio, npci int
	for _, c := range m.closers {
		switch t := c.(type) {
		case *virtio.MMIO:
			out = append(out, namedTransport{fmt.Sprintf("virtio-mmio.%d", nmmio), t})
			nmmio++
		case *virtio.PCI:
			out = append(out, namedTransport{fmt.Sprintf("virtio-pci.%d", npci), t})
			npci++
		}
	}
	return out
}

// Thaw lets the virtio devices SaveState froze move data again; Resume
// calls it, and Snapshot when the save failed.
func (m *Machine) Thaw() {
	for _, t := range m.transports() {
		t.dev.Thaw()
	}
}

// runStateDevice is the snapshot entry that records whether the VM was
// running when the save was asked for (a restore resumes it then).
const runStateDevice = "run-state"

// Snapshot saves the paused VM to path (SaveState, WriteSnapshot) and
// returns the file's size. running records whether the VM ran before it
// was paused for the save. The devices stay frozen until Resume, as a
// QEMU source stays after a migration: what they hold (a port's TX
// data) is in the file and goes to a peer only from the restored VM,
// not also from this one. A failed save thaws them at once.
func (m *Machine) Snapshot(path, vmmVersion, machine string, running bool) (_ int64, err error) {
	start := time.Now()
	st, err := m.SaveState(machine)
	if err != nil {
		return 0, err
	}
	saved := time.Now()
	defer func() {
		if err != nil {
			m.Thaw()
		}
	}()
	var rs byte
	if running {
		rs = 1
	}
	st.Devices = append(st.Devices, snapshot.Device{Name: runStateDevice, Data: []byte{rs}})
	if err := m.WriteSnapshot(path, vmmVersion, st); err != nil {
		return 0, err
	}
	slog.Debug("snapshot written", "path", path, "state", saved.Sub(start), "file", time.Since(saved))
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// deviceState is a device whose state snapshots carry.
type deviceState interface {
	SaveState() []byte
	RestoreState([]byte) error
}

type namedDevice struct {
	name string
	dev  deviceState
}

// legacyDevices are the machine's own devices with state. (pvpanic and
// the debug-exit port have none, pvpanic-pci only its configuration
// space; the caller saves the virtio devices.)
func (m *Machine) legacyDevices() []namedDevice {
	out := []namedDevice{{"com1", m.uart}}
	if m.pvpanicPCI != nil {
		out = append(out, namedDevice{"pvpanic-pci", m.pvpanicPCI})
	}
	for _, d := range []struct {
		name string
		port uint64
	}{{"i8042", I8042Port}, {"rtc", 0x70}} {
		if dev, _, ok := m.pio.find(d.port, 1); ok {
			if s, ok := dev.(deviceState); ok {
				out = append(out, namedDevice{d.name, s})
			}
		}
	}
	return out
}

// WriteSnapshot writes st and guest RAM to path (snapshot.Write); the
// VM must still be paused, with no device writing guest memory.
func (m *Machine) WriteSnapshot(path, vmmVersion string, st *snapshot.State) error {
	if !m.Paused() {
		return fmt.Errorf("snapshot %s: %w", path, errNotPaused)
	}
	var ram [][]byte
	var untouched [][]bool
	for _, r := range m.mem.Regions() {
		ram = append(ram, r.Host)
		if !m.mem.fromFile { // a file mapping's absent pages hold the file's data
			untouched = append(untouched, untouchedPages(r.Host))
		}
	}
	return snapshot.WriteSparse(path, vmmVersion, st, ram, untouched)
}

func (m *Machine) saveVM() (snapshot.VM, error) {
	var s snapshot.VM
	var err error
	for _, c := range []struct {
		id  uint32
		dst *kvm.IRQChip
	}{{kvm.IRQChipPICMaster, &s.PICMaster}, {kvm.IRQChipPICSlave, &s.PICSlave}, {kvm.IRQChipIOAPIC, &s.IOAPIC}} {
		if *c.dst, err = m.vm.IRQChip(c.id); err != nil {
			return s, err
		}
	}
	if s.PIT, err = m.vm.PIT2(); err != nil {
		return s, err
	}
	if s.Clock, err = m.vm.Clock(); err != nil {
		return s, err
	}
	s.Clock.Flags &^= kvm.ClockTSCStable // a flag KVM_SET_CLOCK refuses
	return s, nil
}

// save reads this vCPU's state in Firecracker's order: MP state first
// (reading it can change the LAPIC), events last (the other reads may
// change what is pending).
func (v *vcpu) save(s *snapshot.VCPU, msrList []uint32, xsave, xcrs bool) error {
	c := v.cpu
	var err error
	if s.MPState, err = c.MPState(); err != nil {
		return err
	}
	if s.Regs, err = c.Regs(); err != nil {
		return err
	}
	if s.Sregs, err = c.Sregs(); err != nil {
		return err
	}
	if s.FPU, err = c.FPU(); err != nil {
		return err
	}
	if xsave {
		if s.XSave, err = c.XSave(); err != nil {
			return err
		}
		s.HasXSave = true
	}
	if xcrs {
		if s.XCRs, err = c.XCRs(); err != nil {
			return err
		}
	}
	if s.DebugRegs, err = c.DebugRegs(); err != nil {
		return err
	}
	if s.LAPIC, err = c.LAPIC(); err != nil {
		return err
	}
	if khz, err := c.TSCKHz(); err == nil {
		s.TSCKHz = khz
	}
	s.CPUID = slices.Clone(v.cpuid)
	if s.MSRs, err = readMSRs(c, msrList); err != nil {
		return err
	}
	if s.Events, err = c.Events(); err != nil {
		return err
	}
	// GET reports these fields without saying so; SET takes them only
	// when flagged.
	s.Events.Flags |= kvm.VCPUEventValidNMIPending | kvm.VCPUEventValidSIPIVector
	return nil
}

// readMSRs reads every MSR of list this vCPU has. KVM's list names MSRs
// for every CPU it supports; one the vCPU lacks (its CPUID does not
// offer the feature) stops KVM_GET_MSRS there, so it is dropped and the
// rest read again.
func readMSRs(c *kvm.VCPU, list []uint32) ([]kvm.MSREntry, error) {
	var out []kvm.MSREntry
	for len(list) > 0 {
		entries := make([]kvm.MSREntry, len(list))
		for i, idx := range list {
			entries[i].Index = idx
		}
		n, err := c.MSRsPartial(entries)
		if err != nil {
			return nil, err
		}
		out = append(out, entries[:n]...)
		if n < len(list) {
			slog.Debug("snapshot: MSR not saved (the vCPU lacks it)", "vcpu", c.ID(), "msr", fmt.Sprintf("%#x", list[n]))
			n++
		}
		list = list[n:]
	}
	return out, nil
}

// restore sets this vCPU's state from s in Firecracker's order: MP state
// before the registers, SREGS (the APIC base) before the LAPIC, the LAPIC
// before the MSRs (the TSC deadline needs it), the TSC before its
// deadline, and the events, which SET_REGS would clear, last.
func (v *vcpu) restore(s *snapshot.VCPU) error {
	c := v.cpu
	if s.TSCKHz != 0 {
		if khz, err := c.TSCKHz(); err == nil && !tscClose(khz, s.TSCKHz) {
			if err := c.SetTSCKHz(s.TSCKHz); err != nil {
				return fmt.Errorf("vCPU %d: the snapshot's TSC runs at %d kHz, this host's at %d kHz, and KVM cannot scale it: %w", v.id, s.TSCKHz, khz, err)
			}
		}
	}
	steps := []func() error{
		func() error { return c.SetMPState(s.MPState) },
		func() error { return c.SetRegs(s.Regs) },
		func() error { return c.SetSregs(s.Sregs) },
		func() error { return c.SetFPU(s.FPU) },
		func() error {
			if s.HasXSave {
				return c.SetXSave(s.XSave)
			}
			return nil
		},
		func() error {
			if s.XCRs.NrXCRs > 0 {
				return c.SetXCRs(s.XCRs)
			}
			return nil
		},
		func() error { return c.SetDebugRegs(s.DebugRegs) },
		func() error { return c.SetLAPIC(s.LAPIC) },
		func() error {
			var first, deferred []kvm.MSREntry
			for _, e := range s.MSRs {
				if e.Index == msrTSCDeadline {
					deferred = append(deferred, e)
				} else {
					first = append(first, e)
				}
			}
			for _, set := range [][]kvm.MSREntry{first, deferred} {
				if len(set) > 0 {
					if err := c.SetMSRs(set); err != nil {
						return err
					}
				}
			}
			return nil
		},
		func() error { return c.SetEvents(s.Events) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	v.clockCtrl()
	return nil
}

// clockCtrl tells the guest's kvmclock it was stopped by the host, so
// the guest's watchdogs do not count the pause.
func (v *vcpu) clockCtrl() {
	if err := v.cpu.KVMClockCtrl(); err != nil && !errors.Is(err, kvm.ErrNoKVMClock) {
		slog.Debug("KVM_KVMCLOCK_CTRL", "vcpu", v.id, "err", err)
	}
}

// tscClose reports whether two TSC frequencies agree within 250 ppm,
// the calibration noise QEMU and Firecracker also accept.
func tscClose(a, b uint32) bool {
	d := int64(a) - int64(b)
	return max(d, -d)*1_000_000 <= int64(b)*250
}

// restoreVM sets the irqchip, PIT and the machine's own devices from
// the snapshot (New, before any vCPU exists); the clock is set by
// startRestored, just before the vCPUs run, so the time spent building
// the VM is not guest time.
func (m *Machine) restoreVM() error {
	s := m.cfg.Restore.State.VM
	for _, c := range []kvm.IRQChip{s.PICMaster, s.PICSlave, s.IOAPIC} {
		if err := m.vm.SetIRQChip(c); err != nil {
			return fmt.Errorf("snapshot %s: %w", m.cfg.Restore.Path(), err)
		}
	}
	if err := m.vm.SetPIT2(s.PIT); err != nil {
		return fmt.Errorf("snapshot %s: %w", m.cfg.Restore.Path(), err)
	}
	// The devices after the irqchip: a UART whose line was high raises
	// it again.
	saved := map[string][]byte{}
	for _, d := range m.cfg.Restore.State.Devices {
		saved[d.Name] = d.Data
	}
	want := map[string]bool{}
	for _, d := range m.legacyDevices() {
		want[d.name] = true
		b, ok := saved[d.name]
		if !ok {
			return fmt.Errorf("snapshot %s: no state for %s", m.cfg.Restore.Path(), d.name)
		}
		if err := d.dev.RestoreState(b); err != nil {
			return fmt.Errorf("snapshot %s: %w", m.cfg.Restore.Path(), err)
		}
	}
	ts := m.transports()
	for _, t := range ts {
		want[t.name] = true
	}
	want[runStateDevice] = true
	for _, d := range m.cfg.Restore.State.Devices {
		if !want[d.Name] {
			return fmt.Errorf("snapshot %s: the snapshot has a device %s this command line does not", m.cfg.Restore.Path(), d.Name)
		}
	}
	for _, t := range ts {
		b, ok := saved[t.name]
		if !ok {
			return fmt.Errorf("snapshot %s: this command line has a device %s the snapshot does not", m.cfg.Restore.Path(), t.name)
		}
		if err := t.dev.RestoreState(b); err != nil {
			return fmt.Errorf("snapshot %s: %s: %w", m.cfg.Restore.Path(), t.name, err)
		}
	}
	return nil
}

// startRestored sets the kvmclock of a restored VM; Run calls it once
// every vCPU has its state.
func (m *Machine) startRestored() error {
	if m.cfg.Restore == nil {
		return nil
	}
	if err := m.vm.SetClock(m.cfg.Restore.State.VM.Clock); err != nil {
		return fmt.Errorf("snapshot %s: %w", m.cfg.Restore.Path(), err)
	}
	// The devices' interrupts can reach the vCPUs now.
	m.Thaw()
	return nil
}

// checkRestore refuses a snapshot whose vCPUs saw another CPUID than
// this run would give them (another host CPU or KVM, or other -cpu
// features): the guest has already read it.
func (m *Machine) checkRestore() error {
	st := m.cfg.Restore.State
	for id := range m.cfg.CPUs {
		want := buildCPUID(m.supportedCPUID, id, m.cfg.CPUs, m.cfg.CPUFeatures)
		if d := cpuidDiff(st.VCPUs[id].CPUID, want); d != "" {
			return fmt.Errorf("snapshot %s: vCPU %d: CPUID differs from this host's: %s", m.cfg.Restore.Path(), id, d)
		}
		if st.VCPUs[id].HasXSave {
			if n, err := m.sys.CheckExtension(kvm.CapXSave); err != nil || n == 0 {
				return fmt.Errorf("snapshot %s: saved with XSAVE state, this host's KVM has no KVM_SET_XSAVE", m.cfg.Restore.Path())
			}
		}
	}
	return nil
}

// cpuidDiff names the first leaf that differs between saved and now.
func cpuidDiff(saved, now []kvm.CPUIDEntry) string {
	key := func(e kvm.CPUIDEntry) [2]uint32 { return [2]uint32{e.Function, e.Index} }
	find := func(in []kvm.CPUIDEntry, k [2]uint32) (kvm.CPUIDEntry, bool) {
		for _, e := range in {
			if key(e) == k {
				return e, true
			}
		}
		return kvm.CPUIDEntry{}, false
	}
	for _, s := range saved {
		n, ok := find(now, key(s))
		switch {
		case !ok:
			return fmt.Sprintf("leaf %#x.%d is not offered here", s.Function, s.Index)
		case s != n:
			return fmt.Sprintf("leaf %#x.%d saved eax=%#x ebx=%#x ecx=%#x edx=%#x, here eax=%#x ebx=%#x ecx=%#x edx=%#x",
				s.Function, s.Index, s.EAX, s.EBX, s.ECX, s.EDX, n.EAX, n.EBX, n.ECX, n.EDX)
		}
	}
	for _, n := range now {
		if _, ok := find(saved, key(n)); !ok {
			return fmt.Sprintf("leaf %#x.%d is new here", n.Function, n.Index)
		}
	}
	return ""
}

// onVCPUThreads runs fn for every vCPU on the vCPU's own thread while
// the VM is paused, and returns the first error. Each paused vCPU is
// parked in hold, which runs a posted call before it can leave. It
// waits for Run to have created the vCPUs (a VM started paused).
func (m *Machine) onVCPUThreads(fn func(v *vcpu) error) error {
	select {
	case <-m.start: // Run has created every vCPU it will
	case <-m.done:
		return errors.New("the VM has ended")
	}
	m.mu.Lock()
	vcpus := slices.Clone(m.vcpus)
	m.mu.Unlock()
	p := &m.pause
	p.mu.Lock()
	defer p.mu.Unlock()
	// A VM started paused parks its vCPUs as they come up.
	for p.paused && p.parked+p.gone < m.cfg.CPUs && !m.stopping.Load() {
		p.cond.Wait()
	}
	switch {
	case !p.paused:
		return errNotPaused
	case m.stopping.Load() || p.gone > 0 || len(vcpus) != m.cfg.CPUs:
		return errors.New("the VM has ended")
	}
	for _, v := range vcpus {
		if v.call != nil {
			return errors.New("another save is in progress")
		}
	}
	errs := make([]error, len(vcpus))
	for i, v := range vcpus {
		v.call = func() { errs[i] = fn(v) }
	}
	p.cond.Broadcast()
	for _, v := range vcpus {
		for v.call != nil {
			p.cond.Wait()
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// runCall runs a call posted by onVCPUThreads; p.mu is held on entry
// and on return.
func (v *vcpu) runCall() {
	p := &v.m.pause
	fn := v.call
	p.mu.Unlock()
	fn()
	p.mu.Lock()
	v.call = nil
	p.cond.Broadcast()
}

// SavedRunning reports whether the VM in f was running when it was
// saved (false for a VM saved paused, or a file without the record).
func SavedRunning(f *snapshot.File) bool {
	for _, d := range f.State.Devices {
		if d.Name == runStateDevice {
			return len(d.Data) == 1 && d.Data[0] == 1
		}
	}
	return false
}
