package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"vmm/chardev"
	"vmm/devices/virtio"
	"vmm/devices/virtioserial"
	"vmm/machine"
	"vmm/snapshot"
)

// runVM is `vmm run`: it returns the process exit status.
func runVM(args []string) int {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			fmt.Print(runHelp)
			return 0
		}
	}
	o, err := parseOptions(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm: %v\n", err)
		return 2
	}
	if o.name != "" {
		slog.SetDefault(slog.Default().With("vm", o.name))
	}
	if o.daemonize && !daemonChild() {
		return daemonize(args)
	}
	if o.pidfile != "" {
		if err := writePidfile(o.pidfile); err != nil {
			fmt.Fprintf(os.Stderr, "vmm: %v\n", err)
			return 1
		}
		defer os.Remove(o.pidfile)
	}
	status, err := boot(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm: %v\n", err)
		var oe optionError
		if errors.As(err, &oe) {
			return 2
		}
		return 1
	}
	return status
}

func boot(o *options) (int, error) {
	var kernel, initrd []byte
	var err error
	if o.incoming == "" { // a restored VM's kernel is in its RAM
		if kernel, err = os.ReadFile(o.kernel); err != nil {
			return 0, fmt.Errorf("-kernel: %w", err)
		}
		if o.initrd != "" {
			if initrd, err = os.ReadFile(o.initrd); err != nil {
				return 0, fmt.Errorf("-initrd: %w", err)
			}
		}
	}
	serialCfgs, err := o.devices.build()
	if err != nil {
		return 0, badOption(err)
	}
	identity := machineIdentity(o, serialCfgs)
	var restore *snapshot.File
	startPaused := o.startPaused
	if o.incoming != "" {
		// Checked before anything is started: a refused file leaves
		// nothing behind.
		if restore, err = openIncoming(o, serialCfgs); err != nil {
			return 0, err
		}
		defer restore.Close()
		startPaused = restoredPaused(o, restore)
	}
	if startPaused && len(o.monitors) == 0 {
		why := "-S"
		if !o.startPaused {
			why = "the snapshot was saved paused"
		}
		return 0, badOption(fmt.Errorf("the VM would start paused (%s) with no QMP monitor to resume it: add -qmp unix:PATH,server=on,wait=off and send cont", why))
	}
	mon := newMonitor(o, serialCfgs) // nil without -qmp or -mon
	if mon != nil {
		mon.identity = identity
	}
	if err := checkHost(o); err != nil {
		return 0, err
	}
	loop, err := chardev.NewLoop()
	if err != nil {
		return 0, err
	}
	defer loop.Close()
	loopErr := make(chan error, 1)
	go func() { loopErr <- loop.Run() }()

	// Ctrl-A keys on every stdio chardev, and signals: both may come
	// before the VM exists (a socket server waiting for its client).
	stop := &stopper{}
	for _, c := range o.devices.chardevs {
		c.setEscape(stop)
	}
	if o.serial != nil && o.serialRef == "" {
		o.serial.setEscape(stop)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(sigs)
	var signalled atomic.Int32
	go func() {
		if s, ok := <-sigs; ok {
			sig := s.(unix.Signal)
			signalled.Store(int32(sig))
			fmt.Fprintf(os.Stderr, "vmm: terminating on signal %d (%v)\n", int(sig), sig)
			stop.stop("signal "+s.String(), 128+int(sig))
		}
	}()

	var mmioDevs, pciDevs []virtio.Device
	var serialDevs []*virtioserial.Device
	for _, bc := range serialCfgs {
		bc.Cfg.Loop = loop
		vs, err := virtioserial.New(bc.Cfg)
		if err != nil {
			return 0, badOption(err)
		}
		defer vs.Close()
		for _, p := range bc.Cfg.Ports {
			if c := o.devices.chardevs[p.Backend.ID()]; c != nil {
				c.announceWait()
			}
		}
		if err := vs.Start(); err != nil {
			return 0, err
		}
		serialDevs = append(serialDevs, vs)
		if bc.PCI {
			pciDevs = append(pciDevs, vs)
		} else {
			mmioDevs = append(mmioDevs, vs)
		}
	}

	var com1 *com1Host
	var serialOut io.Writer
	if o.serial != nil {
		com1 = newCOM1Host(o.serial.backend, loop)
		ring := chardev.NewOutputRing(com1, 1<<20)
		serialOut = ring
		// Last: what COM1 holds goes out before its backend closes.
		defer func() {
			com1.giveUpAfter(time.Now().Add(drainTimeout))
			closeSerialOut(ring)
			o.serial.backend.Close()
		}()
	}
	var m *machine.Machine
	m, err = machine.New(machine.Config{
		MemSize: o.memSize, CPUs: o.cpus, Kernel: kernel, Initrd: initrd,
		Cmdline: o.cmdline, CPUFeatures: o.cpu, SerialOut: serialOut,
		VirtioMMIO: mmioDevs, VirtioPCI: pciDevs, NoACPI: !o.acpi, NoPCI: o.microvm, PVPanicPCI: o.devices.pvpanicPCI,
		Panicked: onGuestPanic(o.panicAction, &m),
		Restore:  restore, StartPaused: startPaused,
	})
	if err != nil {
		return 0, explainFit(err, o, len(kernel), len(initrd))
	}
	warnEmulatingHost(kernel)
	defer m.Close()
	// Deferred calls run last first: the reaper takes the VM before
	// m.Close drops vmm's reference.
	defer startReaper(m)
	go func() {
		if err := <-loopErr; err != nil {
			m.Stop("event loop failed: " + err.Error())
		}
	}()
	if com1 != nil {
		com1.rx = m.UART()
		o.serial.announceWait()
		if err := o.serial.backend.Start(loop, com1); err != nil {
			return 0, err
		}
	}
	stop.set(m)

	if err := mon.start(m, loop, serialCfgs, serialDevs, m.Stop); err != nil {
		return 0, err
	}
	defer mon.close()
	daemonReady() // -daemonize: the VM is up; leave the terminal
	exit := m.Run()
	mon.ended(exit)
	// What the guest handed virtio-serial before it stopped (TX buffers,
	// kicked or not, and console output) still goes out, before guest
	// memory goes with m.Close (DESIGN.md).
	m.WaitStopped()
	writeKVMStats(m)
	deadline := time.Now().Add(drainTimeout)
	for _, vs := range serialDevs {
		if left := vs.Drain(deadline); left > 0 {
			slog.Warn("virtio-serial: guest output its host peers did not take before exit", "bytes", left, "waited", drainTimeout)
		}
	}
	if exit.Err != nil {
		return 0, explainFatal(exit.Err)
	}
	slog.Info("VM ended", "reason", exit.Reason, "status", exit.Status)
	if sig := signalled.Load(); sig != 0 && strings.HasPrefix(exit.Reason, "signal ") {
		return 128 + int(sig), nil // the shell's convention for a killed program
	}
	return exit.Status, nil
}

// drainTimeout bounds how long vmm waits, once the guest has stopped,
// for host peers to take what the guest wrote before: a peer that is not
// reading must not keep a powered-off VM alive.
const drainTimeout = time.Second

// closeSerialOut writes out what COM1 still holds.
func closeSerialOut(r *chardev.OutputRing) {
	r.Close()
	if n := r.Dropped(); n > 0 {
		slog.Warn("serial console output dropped (host too slow)", "bytes", n)
	}
}

// writePidfile writes vmm's pid to path, as QEMU's -pidfile does.
func writePidfile(path string) error {
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("-pidfile: %w", err)
	}
	return nil
}

// optionError is a bad option found after parsing (exit status 2).
type optionError struct{ error }

func (e optionError) Unwrap() error { return e.error }

// badOption marks err as the user's option's fault.
func badOption(err error) error { return optionError{err} }
