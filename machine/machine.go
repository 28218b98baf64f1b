// Package machine assembles a KVM virtual machine: guest memory, vCPU
// goroutines, the PIO and MMIO buses, the in-kernel irqchip and PIT,
// the legacy devices, and the lifecycle that ends it with a status.
package machine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"vmm/boot"
	"vmm/devices"
	"vmm/devices/pci"
	"vmm/devices/virtio"
	"vmm/kvm"
	"vmm/snapshot"
)

// Config describes a VM. Kernel and Initrd are file contents.
type Config struct {
	MemSize     uint64
	CPUs        int
	Kernel      []byte
	Initrd      []byte
	Cmdline     string
	CPUFeatures []FeatureChange
	// SerialOut receives COM1's output; it must not block (see
	// chardev.OutputRing). nil discards it.
	SerialOut io.Writer
	// VirtioMMIO devices are placed in the MMIO hole, each with its own
	// interrupt, and announced on the kernel command line.
	VirtioMMIO []virtio.Device
	// VirtioPCI devices sit behind a PCI host bridge, one slot each.
	VirtioPCI []virtio.Device
	// NoACPI leaves out the ACPI tables (QEMU's -machine acpi=off); the
	// MP table is always there for kernels built without ACPI.
	NoACPI bool
	// NoPCI leaves out the PCI host bridge (QEMU's microvm); VirtioPCI
	// must then be empty.
	NoPCI bool
	// PVPanicPCI adds QEMU's pvpanic-pci function (1b36:0011) after the
	// virtio-pci ones: the same events as the ISA port, through a memory
	// BAR, for kernels without ACPI (which cannot find QEMU0001).
	PVPanicPCI bool
	// Panicked is called (on a vCPU thread: it must not wait for the
	// vCPUs) with the events the guest reports through the pvpanic
	// device (devices.PanicPanicked, PanicCrashLoaded). nil: the panic
	// ends the VM with status 1.
	Panicked func(events byte)
	// Restore, when set, makes New build the VM from a snapshot opened
	// (and checked against -m, -smp and the machine) by snapshot.Open,
	// instead of booting Kernel: RAM is mapped from the file, and the
	// irqchip, PIT, clock and vCPUs take the saved state before any
	// vCPU runs. The file must stay unchanged while the VM lives.
	Restore *snapshot.File
	// StartPaused holds the vCPUs from the start until Resume (-S, or a
	// VM restored from a snapshot taken while paused).
	StartPaused bool
}

// Exit is how a VM ended: Status is the process exit status vmm should
// use; Err is set when the VM died rather than ended.
type Exit struct {
	Status int
	Reason string
	Err    error
}

// Machine is one VM.
type Machine struct {
	cfg            Config
	sys            *kvm.System
	vm             *kvm.VM
	mem            *Memory
	pio, mmio      *Bus
	entry          *boot.Entry
	supportedCPUID []kvm.CPUIDEntry
	uart           *devices.UART
	pvpanicPCI     *pci.ConfigSpace // -device pvpanic-pci's function, nil without
	postFD         int
	closers        []io.Closer // transports, closed before the VM

	mu sync.Mutex
	// vcpus are the vCPUs created so far; guarded by mu.
	vcpus []*vcpu

	pause    pauseState // stop/cont: holds vCPUs out of KVM_RUN
	start    chan struct{}
	stopping atomic.Bool
	stopOnce sync.Once
	done     chan struct{}
	exit     Exit // written once, before done is closed
}

// New builds a VM ready to Run.
func New(cfg Config) (_ *Machine, err error) {
	if cfg.CPUs < 1 {
		return nil, fmt.Errorf("-smp %d: at least one vCPU is needed", cfg.CPUs)
	}
	m := &Machine{cfg: cfg, pio: NewBus("pio"), mmio: NewBus("mmio"),
		start: make(chan struct{}), done: make(chan struct{})}
	m.pause.init()
	m.pause.paused = cfg.StartPaused
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if m.sys, err = kvm.Open(); err != nil {
		return nil, err
	}
	maxCPUs, err := m.sys.MaxVCPUs()
	if err != nil {
		return nil, err
	}
	if cfg.CPUs > maxCPUs || cfg.CPUs > 254 {
		return nil, fmt.Errorf("-smp %d: more vCPUs than KVM allows (%d)", cfg.CPUs, min(maxCPUs, 254))
	}
	if m.supportedCPUID, err = m.sys.SupportedCPUID(); err != nil {
		return nil, err
	}
	if m.vm, err = m.sys.CreateVM(); err != nil {
		return nil, err
	}
	if cfg.Restore != nil {
		if err = m.checkRestore(); err != nil {
			return nil, err
		}
		m.mem, err = snapshotMemory(cfg.Restore, cfg.MemSize)
	} else {
		m.mem, err = NewMemory(cfg.MemSize)
	}
	if err != nil {
		return nil, err
	}
	for i, r := range m.mem.Regions() {
		if err = m.vm.SetUserMemoryRegion(kvm.UserMemoryRegion{
			Slot: uint32(i), GuestPhysAddr: r.Start, MemorySize: uint64(len(r.Host)),
			UserspaceAddr: hostAddr(r.Host),
		}); err != nil {
			return nil, err
		}
	}
	// The platform after the RAM slots: a memslot change once the
	// irqchip and PIT exist waits for KVM's SRCU readers (4–10 ms here,
	// 0.2 ms before).
	if err = m.setupPlatform(); err != nil {
		return nil, err
	}
	cmdline, err := m.addVirtioMMIO(cfg.Cmdline)
	if err != nil {
		return nil, err
	}
	slots, err := m.addVirtioPCI()
	if err != nil {
		return nil, err
	}
	if cfg.Restore != nil {
		// RAM already holds what the loader and firmware wrote; only the
		// devices the tables describe are placed again.
		if !cfg.NoACPI {
			if _, err := m.addACPI(slots); err != nil {
				return nil, fmt.Errorf("ACPI: %w", err)
			}
		}
		if err = m.addLegacyDevices(); err != nil {
			return nil, err
		}
		if err = m.restoreVM(); err != nil {
			return nil, err
		}
		return m, nil
	}
	// Firmware's part: what a guest jumping to F000:FFF0 finds (Linux's
	// reboot on vmm's hardware-reduced ACPI platform ends there).
	if err = boot.WriteResetVector(m.mem); err != nil {
		return nil, err
	}
	if m.entry, err = boot.Load(m.mem, m.mem.RAM(), cfg.Kernel, cfg.Initrd, cmdline); err != nil {
		return nil, err
	}
	if !cfg.NoACPI {
		rsdp, err := m.addACPI(slots)
		if err != nil {
			return nil, fmt.Errorf("ACPI tables: %w", err)
		}
		if err := m.entry.SetRSDP(m.mem, rsdp); err != nil {
			return nil, err
		}
	}
	if err = boot.WriteMPTable(m.mem, boot.MPTableAddr(cfg.CPUs), cfg.CPUs); err != nil {
		return nil, fmt.Errorf("MP table: %w", err)
	}
	if err = m.addLegacyDevices(); err != nil {
		return nil, err
	}
	return m, nil
}

// setupPlatform creates what a PC has before any device is added: the
// interrupt controllers, the PIT, and KVM's private pages.
func (m *Machine) setupPlatform() error {
	if err := m.vm.SetTSSAddr(tssAddr); err != nil {
		return err
	}
	if err := m.vm.SetIdentityMapAddr(identityMapAddr); err != nil {
		return err
	}
	if err := m.vm.CreateIRQChip(); err != nil {
		return err
	}
	return m.vm.CreatePIT2(kvm.PITSpeakerDummy)
}

func (m *Machine) addLegacyDevices() error {
	out := m.cfg.SerialOut
	if out == nil {
		out = io.Discard
	}
	m.uart = devices.NewUART(out, func(level bool) {
		if err := m.vm.IRQLine(COM1IRQ, level); err != nil {
			slog.Warn("COM1 interrupt", "err", err)
		}
	})
	devs := []struct {
		base, size uint64
		name       string
		dev        Device
	}{
		{COM1Port, 8, "com1", m.uart},
		{I8042Port, 5, "i8042", devices.NewI8042(func() {
			m.stop(Exit{Status: 0, Reason: "guest reset (i8042)"})
		})},
		{0x70, 2, "rtc", devices.NewRTC(nil)}, // CMOS RTC and NVRAM, ports 0x70-0x71
		{devices.PVPanicPort, 1, "pvpanic", devices.NewPVPanic(m.panicked)},
		{DebugExitPort, 1, "debug-exit", devices.NewDebugExit(func(status int) {
			m.stop(Exit{Status: status, Reason: fmt.Sprintf("guest exit %d (port %#x)", status, DebugExitPort)})
		})},
	}
	for _, d := range devs {
		if err := m.pio.Add(d.base, d.size, d.name, d.dev); err != nil {
			return err
		}
	}
	return m.absorbPostPort()
}

// UART returns COM1, so a host backend can feed it input.
func (m *Machine) UART() *devices.UART { return m.uart }

// Memory returns guest RAM (tests inspect it).
func (m *Machine) Memory() *Memory { return m.mem }

// PIO returns the port I/O bus, MMIO the memory-mapped one.
func (m *Machine) PIO() *Bus  { return m.pio }
func (m *Machine) MMIO() *Bus { return m.mmio }

// VM returns the KVM VM, for devices that need irqfd or ioeventfd.
func (m *Machine) VM() *kvm.VM { return m.vm }

// Run starts every vCPU and blocks until the VM ends.
func (m *Machine) Run() Exit {
	for id := 0; id < m.cfg.CPUs; id++ {
		v := &vcpu{m: m, id: id, exited: make(chan struct{})}
		ready := make(chan error, 1)
		go v.run(ready)
		err := <-ready
		m.mu.Lock()
		if v.cpu != nil {
			m.vcpus = append(m.vcpus, v)
		}
		m.mu.Unlock()
		if err != nil {
			m.stop(Exit{Status: 1, Err: err})
			close(m.start)
			return m.Wait()
		}
	}
	if err := m.startRestored(); err != nil {
		m.stop(Exit{Status: 1, Err: err})
	}
	close(m.start)
	return m.Wait()
}

// Wait blocks until the VM has ended and returns how.
func (m *Machine) Wait() Exit {
	<-m.done
	return m.exit
}

// Stop ends the VM from the host side (e.g. Ctrl-A x).
func (m *Machine) Stop(reason string) { m.stop(Exit{Status: 0, Reason: reason}) }

// stop records the first exit and kicks every vCPU out of KVM_RUN.
func (m *Machine) stop(e Exit) {
	m.stopOnce.Do(func() {
		m.exit = e
		m.stopping.Store(true)
		m.mu.Lock()
		for _, v := range m.vcpus {
			v.kick()
		}
		m.mu.Unlock()
		m.wakeHeld()
		close(m.done)
	})
}

// Close releases the VM. Call it after Run returns.
func (m *Machine) Close() error {
	var errs []error
	m.stop(Exit{Status: 1, Err: errors.New("machine closed")})
	m.mu.Lock()
	vcpus := m.vcpus
	m.vcpus = nil
	m.mu.Unlock()
	for _, v := range vcpus {
		<-v.exited
		errs = append(errs, v.cpu.Close())
	}
	for _, t := range m.closers {
		errs = append(errs, t.Close())
	}
	if m.vm != nil {
		errs = append(errs, m.vm.Close())
	}
	if m.postFD > 0 {
		errs = append(errs, unix.Close(m.postFD))
	}
	if m.mem != nil {
		errs = append(errs, m.mem.Close())
	}
	if m.sys != nil {
		errs = append(errs, m.sys.Close())
	}
	return errors.Join(errs...)
}
