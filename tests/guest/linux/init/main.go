//go:build linux && amd64

// Command init is /init of the Linux test kernel's initramfs.
//
// It mounts /dev, /proc and /sys, prints
//
//	vmm-init: ready cpus=N online=LIST
//
// to /dev/console (ttyS0), runs the command named by the vmm.cmd= word of
// the kernel command line, prints "vmm-init: result ok" or
// "vmm-init: result FAIL <reason>", and ends the VM: with status N through
// the debug-exit port 0xf4, or, where that port does nothing, by
// reboot(RESTART), which reboot=t turns into a triple fault.
//
// Commands (vmm.cmd=..., default marker):
//
//	marker   nothing more; status 0
//	ports    list the virtio-serial ports, one
//	         "vmm-init: port vportNpM name=X" line each; status 0
//	exit=N   status N (0..255)
//	vs=JOBS  virtio-serial transfers (vs.go)
//	accept[=CASE,…]  the virtio-serial acceptance cases (acceptance.go)
//	hotplug  a port added and removed through QMP (hotplug.go)
//	panic    the init exits, so the kernel panics ("Attempted to kill init")
//
// Before the command it loads the kernel modules named by vmm.modules=a,b,c
// from /modules/ (modules.go), in that order, and opens /dev/console again
// if it had none: with console=hvc0 alone the console exists only once
// virtio_console is loaded. With vmm.poweroff=1 a run that ends with
// status 0 powers the VM off (reboot(POWER_OFF), ACPI S5) instead of
// using the debug-exit port; with vmm.reboot=1 it reboots
// (reboot(RESTART)). With vmm.klog=1 it first prints every kernel log
// line of warning level or worse as "vmm-init: klog LINE" (klog.go).
//
// Build it with CGO_ENABLED=0 (tests/guest/linux/mkinitrd does).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// debugExitPort is the isa-debug-exit device's port: writing v makes QEMU
// exit with status 2*v+1 and the vmm with status v.
const debugExitPort = 0xf4

// failStatus is the exit status of a command that failed.
const failStatus = 1

var console = os.Stdout

func main() {
	for _, m := range []struct{ src, dir, fstype string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			logf("mkdir %s: %v", m.dir, err)
		}
		if err := unix.Mount(m.src, m.dir, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			logf("mount %s on %s: %v", m.fstype, m.dir, err)
		}
	}
	hadConsole := openConsole()

	n, online, err := onlineCPUs()
	if err != nil {
		logf("online cpus: %v", err)
	}
	logf("ready cpus=%d online=%s", n, online)

	cmdline := readCmdline()
	cmd := parseCommand(cmdline)
	status, err := failStatus, loadModules(moduleList(cmdline))
	if !hadConsole && waitConsole(cmdline) {
		// Replay what was printed while there was no console.
		console.Write(early.Bytes())
		logf("console opened after the modules")
	}
	early = nil
	if flagSet(cmdline, "vmm.klog") {
		printKernelWarnings()
	}
	if err != nil {
		cmd = "modules"
	} else {
		status, err = run(cmd)
	}
	if err != nil {
		logf("result FAIL %s: %v", cmd, err)
	} else {
		logf("result ok")
	}
	switch {
	case status == 0 && flagSet(cmdline, "vmm.poweroff"):
		poweroff()
	case status == 0 && flagSet(cmdline, "vmm.reboot"):
		reboot()
	}
	end(status)
}

// openConsole makes /dev/console the init's output, and reports whether
// it could be opened.
func openConsole() bool {
	f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	console = f
	return true
}

// waitConsole opens /dev/console once it is there. With console=hvc0
// the console exists only after virtio_console's handshake with the
// device (PORT_ADD, then CONSOLE_PORT), which the driver's control work
// does after finit_module has returned; other consoles get one try.
func waitConsole(cmdline string) bool {
	if !strings.Contains(cmdline, "console=hvc") {
		return openConsole()
	}
	for deadline := time.Now().Add(30 * time.Second); !openConsole(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// early keeps the init's lines until the console is known: with
// console=hvc0 alone there is none before virtio_console is loaded.
var early = new(bytes.Buffer)

// logf prints one "vmm-init: " line on the console.
func logf(format string, args ...any) {
	line := fmt.Sprintf("vmm-init: "+format+"\n", args...)
	if early != nil {
		early.WriteString(line)
	}
	console.WriteString(line)
}

// readCmdline returns the kernel command line ("" if unreadable).
func readCmdline() string {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		logf("read /proc/cmdline: %v", err)
		return ""
	}
	return string(b)
}

// parseCommand returns the value of the last vmm.cmd= word of cmdline, or
// "marker" if there is none.
func parseCommand(cmdline string) string {
	cmd := "marker"
	for _, w := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(w, "vmm.cmd="); ok {
			cmd = v
		}
	}
	return cmd
}

// run runs cmd and returns the status to end the VM with.
func run(cmd string) (int, error) {
	switch {
	case cmd == "marker":
		return 0, nil
	case cmd == "ports":
		if err := listPorts(); err != nil {
			return failStatus, err
		}
		return 0, nil
	case strings.HasPrefix(cmd, "vs="):
		// Ports appear after the modules are loaded (portDevice): wait
		// for the jobs' ports, so the list below is complete too.
		if err := waitJobPorts(strings.TrimPrefix(cmd, "vs=")); err != nil {
			return failStatus, err
		}
		if err := listPorts(); err != nil {
			return failStatus, err
		}
		if err := runJobs(strings.TrimPrefix(cmd, "vs=")); err != nil {
			return failStatus, err
		}
		return 0, nil
	case cmd == "accept" || strings.HasPrefix(cmd, "accept="):
		if err := runAcceptance(strings.TrimPrefix(strings.TrimPrefix(cmd, "accept"), "=")); err != nil {
			return failStatus, err
		}
		return 0, nil
	case cmd == "hotplug":
		if err := runHotplug(); err != nil {
			return failStatus, err
		}
		return 0, nil
	case cmd == "panic":
		// init ending makes the kernel panic ("Attempted to kill init"):
		// a real panic, through the notifiers pvpanic hooks.
		logf("panic: init exits")
		os.Exit(0)
	case strings.HasPrefix(cmd, "exit="):
		n, err := strconv.Atoi(strings.TrimPrefix(cmd, "exit="))
		if err != nil || n < 0 || n > 255 {
			return failStatus, fmt.Errorf("bad exit status %q (want 0..255)", strings.TrimPrefix(cmd, "exit="))
		}
		return n, nil
	}
	return failStatus, errors.New("unknown command (want marker, ports, vs=JOBS, accept[=CASES] or exit=N)")
}

// onlineCPUs reads /sys/devices/system/cpu/online ("0-1,3") and returns
// the number of CPUs in it and the list itself.
func onlineCPUs() (int, string, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return 0, "?", err
	}
	list := strings.TrimSpace(string(b))
	n, err := countCPUList(list)
	return n, list, err
}

// countCPUList counts the CPUs in a kernel CPU list such as "0-3,6".
func countCPUList(list string) (int, error) {
	n := 0
	for _, r := range strings.Split(list, ",") {
		if r == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return n, fmt.Errorf("cpu list %q: %w", list, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return n, fmt.Errorf("cpu list %q: %w", list, err)
			}
		}
		if b < a {
			return n, fmt.Errorf("cpu list %q: range %s is backwards", list, r)
		}
		n += b - a + 1
	}
	return n, nil
}

// listPorts prints one line per virtio-serial port (console ports included).
func listPorts() error {
	const dir = "/sys/class/virtio-ports"
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		logf("ports n=0")
		return nil
	}
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	// A port's name arrives in its own control message after the port
	// appears: give every port a moment to have one (a port the host
	// did not name keeps an empty name, after the wait).
	portName := func(p string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, p, "name"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		named := 0
		for _, p := range names {
			if n, _ := portName(p); n != "" {
				named++
			}
		}
		if named == len(names) {
			break
		}
	}
	for _, p := range names {
		n, err := portName(p)
		if err != nil {
			return err
		}
		logf("port %s name=%s", p, n)
	}
	logf("ports n=%d", len(names))
	// Console ports are hvc terminals.
	hvcs, _ := filepath.Glob("/sys/class/tty/hvc*")
	for _, h := range hvcs {
		logf("console %s", filepath.Base(h))
	}
	return nil
}

// end ends the VM with status: debug-exit port first, then reboot.
func end(status int) {
	drainConsole()
	if err := debugExit(status); err != nil {
		logf("debug-exit: %v; rebooting", err)
	}
	// Still here: no debug-exit device. reboot=t triple-faults, and the
	// VMM ends with status 0.
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		logf("reboot: %v", err)
	}
	select {}
}

// drainConsole lets the UART send what we printed before the VM goes away.
func drainConsole() {
	if console != os.Stdout {
		_ = unix.IoctlSetInt(int(console.Fd()), unix.TCSBRK, 1) // tcdrain
	}
}

// debugExit writes status to the debug-exit port. It returns (with nil)
// only if the write did not end the VM.
func debugExit(status int) (err error) {
	// iopl is per thread: the out must run on the thread that got it.
	// (Unpinned, the goroutine sometimes moved between the two, the out
	// faulted, and the VM ended by reboot instead of with the status.)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, _, e := unix.Syscall(unix.SYS_IOPL, 3, 0, 0); e != 0 {
		return fmt.Errorf("iopl(3): %w", e)
	}
	defer func() {
		// A #GP on `out` arrives as SIGSEGV, which the runtime turns
		// into a panic in outb.
		if r := recover(); r != nil {
			err = fmt.Errorf("outb 0x%x: %v", debugExitPort, r)
		}
	}()
	outb(debugExitPort, uint8(status))
	return nil
}
