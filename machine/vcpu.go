package machine

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"vmm/kvm"
)

// vcpu is one vCPU goroutine's state. The KVM vCPU is created on the
// goroutine's locked OS thread and only used from there.
type vcpu struct {
	m   *Machine
	id  int
	cpu *kvm.VCPU    // set before the vCPU is published in Machine.vcpus
	tid atomic.Int32 // OS thread id, for kicking it out of KVM_RUN
	// exited is closed when the goroutine no longer uses cpu; the fd
	// is closed by Machine.Close, so kick never races with a close.
	exited chan struct{}
	cpuid  []kvm.CPUIDEntry // the table set in setup, saved in snapshots
	// call is work posted to this vCPU's thread while it is parked
	// (onVCPUThreads); guarded by m.pause.mu.
	call func()
}

// run creates the vCPU on this thread, sets it up and runs it until the
// machine stops. ready receives nil once the vCPU exists, or the error.
func (v *vcpu) run(ready chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer nameThread(fmt.Sprintf("vcpu%d", v.id))()
	defer close(v.exited)
	defer v.m.vcpuGone()
	defer v.tid.Store(0)
	v.tid.Store(int32(unix.Gettid()))
	cpu, err := v.m.vm.CreateVCPU(v.id)
	if err == nil {
		v.cpu = cpu
		err = v.setup()
	}
	ready <- err
	if err != nil {
		return
	}
	<-v.m.start
	for !v.m.stopping.Load() {
		if v.hold() {
			continue // paused and resumed (or stopping): check again
		}
		if err := cpu.Exec(); err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue // kicked: the loop condition decides
			}
			v.m.stop(Exit{Status: 1, Err: fmt.Errorf("vCPU %d: KVM_RUN: %w", v.id, err)})
			return
		}
		if exit, done := v.handleExit(); done {
			v.m.stop(exit)
			return
		}
	}
}

// kick makes a vCPU in (or about to enter) KVM_RUN return at once.
func (v *vcpu) kick() {
	if v.cpu != nil {
		v.cpu.Run().SetImmediateExit(true)
	}
	if tid := v.tid.Load(); tid != 0 {
		// SIGURG is the Go runtime's own preemption signal: it is
		// handled and harmless anywhere, and interrupts KVM_RUN.
		unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
	}
}

func (v *vcpu) setup() error {
	cpuid := buildCPUID(v.m.supportedCPUID, v.id, v.m.cfg.CPUs, v.m.cfg.CPUFeatures)
	if err := v.cpu.SetCPUID2(cpuid); err != nil {
		return err
	}
	v.cpuid = cpuid
	if r := v.m.cfg.Restore; r != nil {
		return v.restore(&r.State.VCPUs[v.id])
	}
	if err := setXCR0(v.cpu, cpuid); err != nil {
		return err
	}
	if err := v.setupLAPIC(); err != nil {
		return err
	}
	fpu := kvm.FPU{FCW: 0x37f, MXCSR: 0x1f80}
	if err := v.cpu.SetFPU(fpu); err != nil {
		return err
	}
	if v.id != 0 {
		return nil // APs wait in the kernel for INIT/SIPI
	}
	regs, err := v.cpu.Regs()
	if err != nil {
		return err
	}
	sregs, err := v.cpu.Sregs()
	if err != nil {
		return err
	}
	v.m.entry.Apply(&regs, &sregs)
	if err := v.cpu.SetSregs(sregs); err != nil {
		return err
	}
	return v.cpu.SetRegs(regs)
}

// setupLAPIC wires LINT0 to ExtINT (the PIC) and LINT1 to NMI, the way
// a PC firmware leaves them and the MP table describes them.
func (v *vcpu) setupLAPIC() error {
	l, err := v.cpu.LAPIC()
	if err != nil {
		return err
	}
	const (
		lvtLINT0  = 0x350
		lvtLINT1  = 0x360
		modeExt   = 7 << 8
		modeNMI   = 4 << 8
		modeClear = 7 << 8
	)
	set := func(off int, mode uint32) {
		r := uint32(l.Regs[off]) | uint32(l.Regs[off+1])<<8 | uint32(l.Regs[off+2])<<16 | uint32(l.Regs[off+3])<<24
		r = r&^modeClear | mode
		l.Regs[off], l.Regs[off+1], l.Regs[off+2], l.Regs[off+3] = byte(r), byte(r>>8), byte(r>>16), byte(r>>24)
	}
	set(lvtLINT0, modeExt)
	set(lvtLINT1, modeNMI)
	return v.cpu.SetLAPIC(l)
}

// handleExit dispatches one exit; done means the machine must stop.
func (v *vcpu) handleExit() (Exit, bool) {
	run := v.cpu.Run()
	switch r := run.ExitReason(); r {
	case kvm.ExitIO:
		io, err := run.IO()
		if err != nil {
			return v.fatal(err.Error())
		}
		for i := 0; i < io.Count; i++ {
			data := io.Data[i*io.Size : (i+1)*io.Size]
			if io.Out {
				v.m.pio.Write(uint64(io.Port), data)
			} else {
				v.m.pio.Read(uint64(io.Port), data)
			}
		}
	case kvm.ExitMMIO:
		mmio := run.MMIO()
		if mmio.Write {
			v.m.mmio.Write(mmio.Addr, mmio.Data)
		} else {
			v.m.mmio.Read(mmio.Addr, mmio.Data)
		}
	case kvm.ExitIntr:
	case kvm.ExitHLT:
		// With the in-kernel LAPIC a halt only exits when nothing can
		// wake the vCPU again: interrupts off, or this CPU is done.
		return Exit{Status: 0, Reason: fmt.Sprintf("vCPU %d halted", v.id)}, v.id == 0
	case kvm.ExitShutdown:
		return v.shutdown(), true
	case kvm.ExitSystemEvent:
		switch ev := run.SystemEvent(); ev {
		case kvm.SystemEventReset:
			return Exit{Status: 0, Reason: "guest reset"}, true
		case kvm.SystemEventShutdown:
			return Exit{Status: 0, Reason: "guest power off"}, true
		default:
			return v.fatal(fmt.Sprintf("system event %d", ev))
		}
	case kvm.ExitInternalError:
		sub, data := run.InternalError()
		what := fmt.Sprintf("suberror %d", sub)
		if sub == 1 {
			what = "suberror 1: emulation failure"
		}
		if len(data) > 0 {
			what += fmt.Sprintf(", data %#x", data)
		}
		return v.fatal("KVM_EXIT_INTERNAL_ERROR (" + what + ")")
	case kvm.ExitFailEntry:
		return v.fatal(fmt.Sprintf("KVM_EXIT_FAIL_ENTRY (hardware reason %#x)", run.FailEntry()))
	default:
		return v.fatal("KVM_EXIT_" + kvm.ExitName(r))
	}
	return Exit{}, false
}

// fatal builds the exit for an unrecoverable vCPU state, naming where
// the guest was and what it was executing.
func (v *vcpu) fatal(what string) (Exit, bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "vCPU %d: %s", v.id, what)
	regs, rerr := v.cpu.Regs()
	sregs, serr := v.cpu.Sregs()
	if rerr == nil && serr == nil {
		fmt.Fprintf(&b, " at rip %#x (cs %#x, cpl %d)", regs.RIP, sregs.CS.Selector, sregs.CS.DPL)
		if code, err := instructionBytes(v.m.mem, &regs, &sregs); err == nil {
			fmt.Fprintf(&b, ", instruction bytes % x", code)
		} else {
			fmt.Fprintf(&b, ", instruction bytes unavailable: %v", err)
		}
	}
	slog.Debug("vCPU stopped", "vcpu", v.id, "regs", fmt.Sprintf("%+v", regs))
	return Exit{Status: 1, Err: errors.New(b.String())}, true
}

// nameThread names the calling (locked) OS thread, so top -H, perf and
// /proc/PID/task/TID/comm tell the vCPU threads apart; it returns the
// function that puts the old name back before the thread goes back to
// the Go scheduler. The process's main thread keeps its name: it is the
// process's own in ps.
func nameThread(name string) (restore func()) {
	if unix.Gettid() == unix.Getpid() {
		return func() {}
	}
	var old [16]byte
	if unix.Prctl(unix.PR_GET_NAME, uintptr(unsafe.Pointer(&old[0])), 0, 0, 0) != nil {
		return func() {}
	}
	b := append([]byte(name), 0)
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
	return func() { unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&old[0])), 0, 0, 0) }
}
