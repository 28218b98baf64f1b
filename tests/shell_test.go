package tests

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The guest side of these tests is the busybox + qemu-ga initramfs of
// tests/stock (build.sh), whose /init prints "vmm-shell: " lines.

// shellGuest is one boot of a tests/stock shell initramfs: what the
// guest-agent and shell sessions run. The stock-kernel rig fills it with
// a Debian kernel and shell-cloud.cpio or shell-generic.cpio.
type shellGuest struct {
	Kernel, Initrd, Cmdline string
	// Mem is -m (256M if empty); Transport the virtio-serial device
	// (virtio-serial-device, i.e. virtio-mmio, if empty).
	Mem, Transport string
	// Extra options for vmm after the common ones (e.g. -smp 2).
	Extra []string
	// Boot bounds launch → "vmm-shell: ready"; Step bounds each request
	// (agent command, typed line). Zero means 10 min and 3 min: generous,
	// because on our 2-core hosts a test-kernel boot that takes under a
	// minute alone took up to 5.5 min while other VMs (the nested rig) ran.
	Boot, Step time.Duration
	// FileSize is the guest-agent file round trip's size (2 MiB if 0).
	FileSize int
}

func (g shellGuest) boot() time.Duration { return cmp.Or(g.Boot, 10*time.Minute) }
func (g shellGuest) step() time.Duration { return cmp.Or(g.Step, 3*time.Minute) }
func (g shellGuest) mem() string         { return cmp.Or(g.Mem, "256M") }
func (g shellGuest) transport() string   { return cmp.Or(g.Transport, "virtio-serial-device") }

// vmmArgs is `vmm run` booting g with cmdline, COM1 on stdio, then extra
// and g.Extra.
func (g shellGuest) vmmArgs(cmdline string, extra ...string) []string {
	args := []string{"run", "-kernel", g.Kernel, "-initrd", g.Initrd, "-m", g.mem(), "-append", cmdline}
	return append(append(args, extra...), g.Extra...)
}

// stockShell returns BUILD/stock/shell-NAME.cpio ($VMM_STOCK_DIR
// overrides BUILD/stock).
func stockShell(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("VMM_STOCK_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "build/stock")
	}
	p := filepath.Join(dir, "shell-"+name+".cpio")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shell initramfs missing (%v): run `tests/stock/build.sh build`", err)
	}
	return p
}

// testKernelShell is the Linux test kernel with shell-NAME.cpio ("test":
// busybox alone; "test-agent": with qemu-ga).
func testKernelShell(t *testing.T, name string) shellGuest {
	vmlinux, _ := linuxKernel(t)
	return shellGuest{Kernel: vmlinux, Initrd: stockShell(t, name), Cmdline: linuxCmdline,
		Extra: []string{"-cpu", linuxCPU}}
}

// TestShell boots the Linux test kernel with the tests/stock shell
// initramfs under vmm twice (in parallel): with COM1 on stdio, stdio
// being a pty as on a user's terminal, using the guest's shell as a user
// would (shellSession); and with vmm.run=CMD, which the init runs before
// it powers off (shellRunSession).
func TestShell(t *testing.T) {
	needKVM(t)
	g := testKernelShell(t, "test")
	t.Run("interactive", func(t *testing.T) {
		t.Parallel()
		shellSession(t, exec.Command(vmmBinary(t), g.vmmArgs(g.Cmdline, "-serial", "stdio", "-qmp", qmpArg(t))...), g)
	})
	t.Run("vmm.run", func(t *testing.T) {
		t.Parallel()
		shellRunSession(t, exec.Command(vmmBinary(t), g.vmmArgs(g.Cmdline+" "+shellRunWord)...), g)
	})
}

// qmpArg is -qmp's value for a QMP socket in a new temporary folder.
func qmpArg(t *testing.T) string {
	return "unix:" + filepath.Join(t.TempDir(), "qmp.sock") + ",server=on,wait=off"
}

// shellRunWord makes the init run a command instead of the shell.
const shellRunWord = `vmm.run="echo run-$((6*7)); exit 3"`

// shellRunSession starts vm (not yet started; its kernel command line
// ends with shellRunWord) and checks the init ran the command, reported
// its status and powered the VM off: status 0.
func shellRunSession(t *testing.T, vm *exec.Cmd, g shellGuest) {
	t.Helper()
	p := startVM(t, vm)
	ready := waitConsole(t, p, "vmm-shell: ready", g.boot())
	select {
	case <-p.done:
	case <-time.After(g.step()):
		t.Fatalf("VM still running %v after the ready line\n%s", g.step(), &p.con)
	}
	checkLines(t, p.con.String(), []string{"run-42", "vmm-shell: run status=3", "vmm-shell: poweroff"})
	if p.status() != 0 {
		t.Errorf("exit status = %d (%v); want 0 (the init powered off)\n%s", p.status(), p.err, &p.con)
	}
	t.Logf("boot to ready line %v", ready.Round(time.Millisecond))
}

// shellPrompt is the PS1 of the shell initramfs in the root directory.
const shellPrompt = "vmm-shell:/# "

// shellSession starts vm (not yet started; a vmm whose console is on
// stdio and whose guest runs a tests/stock shell initramfs) with stdin
// and stdout on a new pty, and: waits for the prompt; types
// `echo $((6*7))` and expects 42; checks the shell has the console as
// its controlling tty and job control (a background job in `jobs`, and
// Ctrl-C ending a foreground job, status 130); then types Ctrl-A x,
// after which vmm must exit promptly with status 0.
func shellSession(t *testing.T, vm *exec.Cmd, g shellGuest) {
	t.Helper()
	master, slave := openPty(t)
	defer master.Close()
	var diag syncBuffer
	vm.Stdin, vm.Stdout, vm.Stderr = slave, slave, &diag
	start := time.Now()
	p := startVM(t, vm)
	slave.Close()
	go io.Copy(&p.con, master) // ends with EIO when vmm has exited

	term := &terminal{t: t, p: p, master: master, diag: &diag}
	// expect, not waitConsole: a VM that ends first is reported with its
	// stderr and the console's last lines (a guest panic's among them).
	term.expect("vmm-shell: ready", g.boot())
	ready := time.Since(start)
	if sock := qmpSocketOf(vm); sock != "" {
		term.qmp = connectQMP(t, sock)
	}
	term.expect(shellPrompt, g.step())
	t.Logf("boot to ready line %v, to prompt %v", ready.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	typed := time.Now()
	term.run("echo $((6*7))", "\n42\n", g.step())
	t.Logf("echo $((6*7)) answered in %v", time.Since(typed).Round(time.Millisecond))
	term.run("uname -s; tty", "\nLinux\n/dev/", g.step())
	// A pasted line arrives in one burst, several times the UART's
	// 16-byte FIFO: vmm pauses the terminal while the FIFO is full and
	// resumes when the guest has read, losing nothing.
	pasted := strings.Repeat("0123456789abcdef", 3) + "-pasted"
	term.write("echo " + pasted + "\r")
	term.expect("\n"+pasted+"\n", g.step())
	term.expect(shellPrompt, g.step())

	// Job control: a background job is listed, and Ctrl-C reaches the
	// foreground job (which has the terminal once it prints "armed").
	term.run("sleep 1000 &", "\n"+shellPrompt, g.step())
	term.run("jobs", "\n[1]+ ", g.step())
	term.run("kill %1", "\n"+shellPrompt, g.step())
	term.typeLine("sh -c 'echo armed; exec sleep 1000'", g.step())
	term.expect("\narmed\n", g.step())
	term.write("\x03")
	term.expect("\n"+shellPrompt, g.step())
	term.run("echo status=$?", "\nstatus=130\n", g.step())

	quit := time.Now()
	term.write("\x01x")
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("vmm still running 10 s after Ctrl-A x\nterminal:\n%s\nstderr:\n%s", &p.con, &diag)
	}
	if p.status() != 0 {
		t.Errorf("vmm exit status after Ctrl-A x = %d (%v); want 0\nstderr:\n%s", p.status(), p.err, &diag)
	}
	t.Logf("Ctrl-A x to exit: %v", time.Since(quit).Round(time.Millisecond))
}

// qmpSocketOf returns the socket of vm's "-qmp unix:PATH,…", if any.
func qmpSocketOf(vm *exec.Cmd) string {
	for i, a := range vm.Args[:max(len(vm.Args)-1, 0)] {
		if v := vm.Args[i+1]; a == "-qmp" && strings.HasPrefix(v, "unix:") {
			return strings.SplitN(strings.TrimPrefix(v, "unix:"), ",", 2)[0]
		}
	}
	return ""
}

// terminal is the user's side of the pty.
type terminal struct {
	t      *testing.T
	p      *vmProc
	master *os.File
	diag   *syncBuffer
	seen   int // output before this offset (with \r removed) is consumed
	// qmp, if set, is asked for COM1's state when the terminal stalls.
	qmp *qmpClient
}

// serialState is COM1's and the vCPUs' state (diagLooks), for
// a failure message: whether a stall was the guest's, the line's or an
// interrupt the nested rig's outer machine lost (then logged so that
// the rig runs the test again).
func (m *terminal) serialState() string {
	if m.qmp == nil {
		return "(no QMP: COM1 and vCPU state unknown)"
	}
	diag := diagLooks(func(cmd string) ([]byte, error) { return m.qmp.mon.Run([]byte(`{"execute":"` + cmd + `"}`)) })
	reportLostInterrupt(m.t, diag)
	return diag
}

func (m *terminal) write(s string) {
	m.t.Helper()
	if _, err := m.master.WriteString(s); err != nil {
		m.t.Fatalf("write to the pty: %v", err)
	}
}

// typeLine types a command and Enter (CR, as a terminal sends it), a
// few keys at a time, each group after the echo of the one before, as a
// typist would. (shellSession also pastes a line in one burst.)
func (m *terminal) typeLine(cmd string, timeout time.Duration) {
	m.t.Helper()
	const group = 8
	for len(cmd) > 0 {
		k := min(group, len(cmd))
		m.write(cmd[:k])
		m.expect(cmd[:k], timeout)
		cmd = cmd[k:]
	}
	m.write("\r")
}

// run types cmd, expects want in its output and then the next prompt.
func (m *terminal) run(cmd, want string, timeout time.Duration) {
	m.t.Helper()
	m.typeLine(cmd, timeout)
	m.expect(want, timeout)
	if !strings.HasSuffix(want, shellPrompt) {
		m.expect(shellPrompt, timeout)
	}
}

// expect polls the terminal output (CRs removed) after what earlier
// calls consumed until it contains want, and consumes up to its end.
func (m *terminal) expect(want string, timeout time.Duration) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := strings.ReplaceAll(m.p.con.String(), "\r", "")
		if i := strings.Index(out[m.seen:], want); i >= 0 {
			m.seen += i + len(want)
			return
		}
		select {
		case <-m.p.done:
			time.Sleep(time.Second) // the last output may still be in the pty
			if strings.Contains(strings.ReplaceAll(m.p.con.String(), "\r", "")[m.seen:], want) {
				continue
			}
			m.t.Fatalf("vmm exited (%v) before the terminal showed %q\nterminal:\n%s\nstderr:\n%s", m.p.err, want, out, m.diag)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("terminal did not show %q within %v after the last match (at %d)\n%s\nterminal:\n%s\nstderr:\n%s", want, timeout, m.seen, m.serialState(), out, m.diag)
		}
	}
}

// openPty returns a new pty's master and slave (Unix 98, through
// /dev/ptmx), neither of them our controlling terminal.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	master = os.NewFile(uintptr(m), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		t.Fatalf("pty number: %v", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	s, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		t.Fatalf("open %s: %v", name, err)
	}
	return master, os.NewFile(uintptr(s), name)
}

// vmProc is a started VM whose console (stdout and stderr) is collected.
type vmProc struct {
	con  syncBuffer
	done chan struct{} // closed when the process has ended
	err  error         // Wait's error, once done is closed
}

// status returns the exit status once done is closed (-1 if it did not
// exit normally).
func (p *vmProc) status() int {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

// startVM starts vm with its stdout (the guest console) and stderr, where
// the caller set none, in one buffer. The VM is killed at the end of the
// test if it is still running.
func startVM(t *testing.T, vm *exec.Cmd) *vmProc {
	t.Helper()
	p := &vmProc{done: make(chan struct{})}
	if vm.Stdout == nil {
		vm.Stdout = &p.con
	}
	if vm.Stderr == nil {
		vm.Stderr = &p.con
	}
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = vm.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			vm.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitConsole polls the console until it contains want, and returns
// how long that took; it fails the test if the VM exits first or the
// timeout passes.
func waitConsole(t *testing.T, p *vmProc, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for !strings.Contains(p.con.String(), want) {
		select {
		case <-p.done:
			if strings.Contains(p.con.String(), want) {
				continue
			}
			t.Fatalf("VM ended (%v) before printing %q\n%s", p.err, want, &p.con)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v\n%s", want, timeout, &p.con)
		}
	}
	return time.Since(start)
}
