package machine

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"vmm/kvm"
	"vmm/snapshot"
)

// TestSnapshotRestore: the test guest, paused while its BSP counts down a
// loop at CPL3 with its AP parked in hlt, is saved to a file; a new
// machine built from the file (no kernel) carries on where it was: the
// loop ends, COM1 input is read, the LAPIC timer and the PIT through the
// IOAPIC tick, and the guest exits with its status. Every line the guest
// prints appears once across the two machines.
func TestSnapshotRestore(t *testing.T) {
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
	const (
		mem     = 64 << 20
		machine = "test: pc, 2 vCPUs, no devices"
	)
	smp, online := "smp; ", "guest: smp 2 cpus online"
	if raceBuild { // the AP stays waiting for INIT/SIPI
		smp, online = "", "guest: hello"
	}
	var out lockedBuffer
	m, err := New(Config{MemSize: mem, CPUs: 2, Kernel: testGuest(t), SerialOut: &out,
		Cmdline: smp + "loop 2000000000; serial 4; timer; timer pit; echo restored ok; exit 5"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exited := make(chan Exit, 1)
	go func() { exited <- m.Run() }()
	waitFor(t, "both vCPUs online", func() bool {
		select {
		case e := <-exited:
			t.Fatalf("the guest ended (%+v) before the snapshot; output:\n%s", e, out.String())
		default:
		}
		return strings.Contains(out.String(), online)
	})
	if _, err := m.SaveState(machine); !errors.Is(err, errNotPaused) {
		t.Errorf("SaveState on a running VM = %v; want %v", err, errNotPaused)
	}
	m.Pause()
	// Debug registers the guest never set: give them values to carry.
	err = m.onVCPUThreads(func(v *vcpu) error {
		d, err := v.cpu.DebugRegs()
		if err != nil {
			return err
		}
		d.DB[0] = 0x1000 + uint64(v.id)
		return v.cpu.SetDebugRegs(d)
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.SaveState(machine)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vm.snap")
	if err := m.WriteSnapshot(path, "test", st); err != nil {
		t.Fatal(err)
	}
	before := out.String()
	m.Stop("snapshot taken")
	if e := <-exited; e.Reason != "snapshot taken" {
		t.Fatalf("first VM ended with %+v before the test stopped it; output:\n%s", e, before)
	}
	for i, v := range st.VCPUs {
		if len(v.MSRs) == 0 || v.LAPIC == (kvm.LAPICState{}) {
			t.Errorf("vCPU %d saved %d MSRs and LAPIC %v; want both", i, len(v.MSRs), v.LAPIC.Regs[:0x40])
		}
	}
	if s := st.VCPUs[1].MPState; !raceBuild && s != kvm.MPStateRunnable && s != kvm.MPStateHalted {
		t.Errorf("AP MP state = %d; want runnable or halted: the guest started it", s)
	}

	f, err := snapshot.Open(path, snapshot.Identity{MemSize: mem, CPUs: 2, Machine: machine})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// A snapshot whose CPUID this run would not give is refused.
	saved := f.State.VCPUs[1].CPUID[0]
	f.State.VCPUs[1].CPUID[0].EBX ^= 1
	if _, err := New(Config{MemSize: mem, CPUs: 2, Restore: f}); err == nil || !strings.Contains(err.Error(), "vCPU 1: CPUID differs from this host's: leaf") {
		t.Errorf("New from a snapshot with other CPUID = %v; want a refusal naming the leaf", err)
	}
	f.State.VCPUs[1].CPUID[0] = saved

	var out2 lockedBuffer
	m2, err := New(Config{MemSize: mem, CPUs: 2, SerialOut: &out2, Restore: f, StartPaused: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	exited2 := make(chan Exit, 1)
	go func() { exited2 <- m2.Run() }()
	// Before it runs, the new VM holds what was saved.
	st2, err := m2.SaveState(machine)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, st, st2)
	m2.UART().Receive([]byte("abcd"))
	if !m2.Resume() {
		t.Error("Resume() of a VM started paused = false; want true")
	}
	select {
	case e := <-exited2:
		if e.Status != 5 || e.Err != nil {
			t.Errorf("restored VM exit = %+v; want status 5\nbefore the snapshot:\n%s\nafter:\n%s", e, before, out2.String())
		}
	case <-time.After(60 * time.Second):
		m2.Stop("test timeout")
		<-exited2
		t.Fatalf("the restored guest did not end; before the snapshot:\n%s\nafter:\n%s", before, out2.String())
	}
	after := out2.String()
	if strings.Contains(after, "guest: hello") {
		t.Errorf("the restored guest booted again:\n%s", after)
	}
	all := before + after
	for _, line := range []string{online, "guest: loop 2000000000 done", `guest: serial got "abcd"`,
		"guest: timer ok 10 interrupts", "guest: timer pit ok 10 interrupts", "restored ok"} {
		if n := strings.Count(all, line); n != 1 {
			t.Errorf("%q printed %d times; want once\nbefore the snapshot:\n%s\nafter:\n%s", line, n, before, after)
		}
	}
}

// sameState compares a saved state with the one read back from the VM
// restored from it, leaving out what moves with time: the TSC, the
// LAPIC timer's current count, the PIT's load times, the clock.
func sameState(t *testing.T, want, got *snapshot.State) {
	t.Helper()
	for i := range want.VCPUs {
		w, g := want.VCPUs[i], got.VCPUs[i]
		for _, c := range []struct {
			what string
			same bool
			g, w any
		}{
			{"MP state", g.MPState == w.MPState, g.MPState, w.MPState},
			{"regs", g.Regs == w.Regs, g.Regs, w.Regs},
			{"sregs", g.Sregs == w.Sregs, g.Sregs, w.Sregs},
			{"FPU", g.FPU == w.FPU, g.FPU, w.FPU},
			{"XSAVE", g.HasXSave == w.HasXSave && g.XSave == w.XSave, g.HasXSave, w.HasXSave},
			{"XCRs", g.XCRs == w.XCRs, g.XCRs.XCRs[0], w.XCRs.XCRs[0]},
			{"debug registers", g.DebugRegs == w.DebugRegs, g.DebugRegs, w.DebugRegs},
			{"events", g.Events == w.Events, g.Events, w.Events},
		} {
			if !c.same {
				t.Errorf("vCPU %d restored %s = %+v; want %+v", i, c.what, c.g, c.w)
			}
		}
		const timerCurrent = 0x390
		for off := 0; off < len(w.LAPIC.Regs); off += 4 {
			if off != timerCurrent && string(g.LAPIC.Regs[off:off+4]) != string(w.LAPIC.Regs[off:off+4]) {
				t.Errorf("vCPU %d LAPIC register %#x = % x; want % x", i, off, g.LAPIC.Regs[off:off+4], w.LAPIC.Regs[off:off+4])
			}
		}
		wm := map[uint32]uint64{}
		for _, e := range w.MSRs {
			wm[e.Index] = e.Data
		}
		for _, e := range g.MSRs {
			if e.Index == 0x10 { // the TSC moves on
				if e.Data < wm[e.Index] {
					t.Errorf("vCPU %d TSC = %d; want at least the saved %d", i, e.Data, wm[e.Index])
				}
				continue
			}
			if d, ok := wm[e.Index]; !ok || d != e.Data {
				t.Errorf("vCPU %d MSR %#x = %#x; want %#x (saved: %v)", i, e.Index, e.Data, d, ok)
			}
		}
		if len(g.MSRs) != len(w.MSRs) {
			t.Errorf("vCPU %d: %d MSRs read back; %d saved", i, len(g.MSRs), len(w.MSRs))
		}
	}
	if got.VM.PICMaster != want.VM.PICMaster || got.VM.PICSlave != want.VM.PICSlave || got.VM.IOAPIC != want.VM.IOAPIC {
		t.Errorf("restored PIC or IOAPIC differs: master % x slave % x ioapic % x; want % x, % x, % x",
			got.VM.PICMaster.Chip[:16], got.VM.PICSlave.Chip[:16], got.VM.IOAPIC.Chip[:32],
			want.VM.PICMaster.Chip[:16], want.VM.PICSlave.Chip[:16], want.VM.IOAPIC.Chip[:32])
	}
	for i := range want.VM.PIT.Channels {
		w, g := want.VM.PIT.Channels[i], got.VM.PIT.Channels[i]
		w.CountLoadTime, g.CountLoadTime = 0, 0
		if g != w {
			t.Errorf("PIT channel %d = %+v; want %+v", i, g, w)
		}
	}
	if !reflect.DeepEqual(got.Devices, want.Devices) {
		t.Errorf("restored devices = %+v; want %+v", got.Devices, want.Devices)
	}
	if len(want.Devices) != 3 {
		t.Errorf("saved %d devices; want COM1, i8042 and the RTC", len(want.Devices))
	}
	if got.VM.Clock.Clock < want.VM.Clock.Clock {
		t.Errorf("kvmclock = %d ns; want at least the saved %d", got.VM.Clock.Clock, want.VM.Clock.Clock)
	}
}
