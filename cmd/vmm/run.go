package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"vmm/chardev"
	"vmm/devices/virtio"
	"vmm/devices/virtioserial"
	"vmm/machine"
)

// runVM is `vmm run`: it returns the process exit status.
func runVM(args []string) int {
	o, err := parseOptions(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm: %v\n", err)
		return 2
	}
	status, err := boot(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm: %v\n", err)
		return 1
	}
	return status
}

func boot(o *options) (int, error) {
	kernel, err := os.ReadFile(o.kernel)
	if err != nil {
		return 0, fmt.Errorf("-kernel: %w", err)
	}
	var initrd []byte
	if o.initrd != "" {
		if initrd, err = os.ReadFile(o.initrd); err != nil {
			return 0, fmt.Errorf("-initrd: %w", err)
		}
	}
	serialCfgs, err := o.devices.build()
	if err != nil {
		return 0, err
	}
	serial, err := openSerial(o.serial)
	if err != nil {
		return 0, err
	}
	defer serial.close()

	loop, err := chardev.NewLoop()
	if err != nil {
		return 0, err
	}
	defer loop.Close()
	loopErr := make(chan error, 1)
	go func() { loopErr <- loop.Run() }()

	var mmioDevs, pciDevs []virtio.Device
	var serialDevs []*virtioserial.Device
	for _, bc := range serialCfgs {
		bc.Cfg.Loop = loop
		vs, err := virtioserial.New(bc.Cfg)
		if err != nil {
			return 0, err
		}
		defer vs.Close()
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

	m, err := machine.New(machine.Config{
		MemSize: o.memSize, CPUs: o.cpus, Kernel: kernel, Initrd: initrd,
		Cmdline: o.cmdline, CPUFeatures: o.cpu, SerialOut: serial.out,
		VirtioMMIO: mmioDevs, VirtioPCI: pciDevs, NoACPI: !o.acpi,
	})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	go func() {
		if err := <-loopErr; err != nil {
			m.Stop("event loop failed: " + err.Error())
		}
	}()
	if serial.in >= 0 {
		esc := &chardev.Escape{
			OnQuit: func() { m.Stop("Ctrl-A x") },
			OnHelp: func() { io.WriteString(os.Stderr, chardev.EscapeHelp) },
		}
		if _, err := chardev.AttachInput(loop, serial.in, m.UART(), esc.Filter); err != nil {
			return 0, fmt.Errorf("serial input: %w", err)
		}
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		if s, ok := <-sigs; ok {
			m.Stop("signal " + s.String())
		}
	}()

	exit := m.Run()
	// What the guest handed virtio-serial before it stopped (TX buffers,
	// kicked or not, and console output) still goes out, before guest
	// memory goes with m.Close (DESIGN.md).
	m.WaitStopped()
	deadline := time.Now().Add(drainTimeout)
	for _, vs := range serialDevs {
		if left := vs.Drain(deadline); left > 0 {
			slog.Warn("virtio-serial: guest output its host peers did not take before exit", "bytes", left, "waited", drainTimeout)
		}
	}
	if exit.Err != nil {
		return 0, exit.Err
	}
	slog.Info("VM ended", "reason", exit.Reason, "status", exit.Status)
	return exit.Status, nil
}

// drainTimeout bounds how long vmm waits, once the guest has stopped,
// for host peers to take what the guest wrote before: a peer that is not
// reading must not keep a powered-off VM alive.
const drainTimeout = time.Second

// serialBackend is COM1's host side.
type serialBackend struct {
	out  *chardev.OutputRing
	in   int // input fd, or -1
	term *chardev.Terminal
	file *os.File
}

func openSerial(spec string) (*serialBackend, error) {
	s := &serialBackend{in: -1}
	var dst io.Writer = io.Discard
	switch {
	case spec == "stdio":
		dst = os.Stdout
		s.in = int(os.Stdin.Fd())
		if chardev.IsTerminal(s.in) {
			t, err := chardev.MakeRaw(s.in)
			if err != nil {
				return nil, err
			}
			s.term = t
		}
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("-serial file: %w", err)
		}
		s.file, dst = f, f
	}
	s.out = chardev.NewOutputRing(dst, 1<<20)
	return s, nil
}

func (s *serialBackend) close() {
	s.out.Close()
	if n := s.out.Dropped(); n > 0 {
		slog.Warn("serial console output dropped (host too slow)", "bytes", n)
	}
	if s.term != nil {
		s.term.Restore()
	}
	if s.file != nil {
		s.file.Close()
	}
}
