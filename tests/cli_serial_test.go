package tests

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serialExchange is the test guest waiting for 5 bytes on COM1 and then
// ending with status 0; serialTyped is what the host sends.
const (
	serialExchange = "serial 5; exit 0"
	serialTyped    = "ab\x01cd"
	serialGot      = `guest: serial got "ab` + "\x01" + `cd"`
)

// peerSession plays a COM1 peer on c: it waits for the guest's hello,
// types serialTyped and waits for the guest's answer. It runs on the
// test goroutine.
func peerSession(t *testing.T, c net.Conn, vm *vmProc) {
	t.Helper()
	var got syncBuffer
	go io.Copy(&got, c) // ends when c is closed
	waitPeer(t, &got, "guest: hello", vm)
	if _, err := io.WriteString(c, serialTyped); err != nil {
		t.Fatalf("write to the serial peer socket: %v", err)
	}
	waitPeer(t, &got, serialGot, vm)
}

// waitPeer waits until a peer's received bytes contain want.
func waitPeer(t *testing.T, got *syncBuffer, want string, vm *vmProc) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(got.String(), want) {
		select {
		case <-vm.done:
			// What vmm wrote before it ended may still be in the socket,
			// not yet copied into got by the peer's goroutine.
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				if strings.Contains(got.String(), want) {
					return
				}
			}
			t.Fatalf("vmm ended (%v) before its serial peer saw %q\npeer got %q\nvmm output:\n%s", vm.err, want, got.String(), &vm.con)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serial peer did not see %q in a minute; got %q\nvmm output:\n%s", want, got.String(), &vm.con)
		}
	}
}

// vmEndedWith waits for vm to exit and checks its status.
func vmEndedWith(t *testing.T, vm *vmProc, status int) {
	t.Helper()
	select {
	case <-vm.done:
	case <-time.After(time.Minute):
		t.Fatalf("vmm still running a minute after the exchange\n%s", &vm.con)
	}
	if vm.status() != status {
		t.Errorf("vmm exit status %d (%v); want %d\n%s", vm.status(), vm.err, status, &vm.con)
	}
}

// TestSerialSocketForms: QEMU's -serial unix:, tcp: and chardev: forms
// reach COM1 through the socket chardev, both ways; a server with
// wait=on says on stderr what it waits for; a server serves the next
// client after the first hangs up.
func TestSerialSocketForms(t *testing.T) {
	needKVM(t)
	guest := guestELF(t)
	t.Run("unix server waits", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "com1.sock")
		vm := startVM(t, exec.Command(vmmBinary(t), "run", "-kernel", guest, "-append", serialExchange,
			"-serial", "unix:"+sock+",server"))
		waitConsole(t, vm, "vmm: info: waiting for a connection on unix:"+sock+" (chardev serial0, server=on,wait=on): connect a client, e.g. socat - UNIX-CONNECT:"+sock, time.Minute)
		c := dial(t, sock)
		defer c.Close()
		peerSession(t, c, vm)
		vmEndedWith(t, vm, 0)
	})
	t.Run("chardev reference", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "com1.sock")
		vm := startVM(t, exec.Command(vmmBinary(t), "run", "-kernel", guest, "-append", serialExchange,
			"-chardev", "socket,id=c1,path="+sock+",server=on,wait=on", "-serial", "chardev:c1"))
		waitConsole(t, vm, "waiting for a connection on unix:"+sock+" (chardev c1", time.Minute)
		c := dial(t, sock)
		defer c.Close()
		peerSession(t, c, vm)
		vmEndedWith(t, vm, 0)
	})
	t.Run("tcp client", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		vm := startVM(t, exec.Command(vmmBinary(t), "run", "-kernel", guest, "-append", serialExchange,
			"-serial", "tcp:"+l.Addr().String()))
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		peerSession(t, c, vm)
		vmEndedWith(t, vm, 0)
	})
	t.Run("next client after a hang-up", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "com1.sock")
		vm := startVM(t, exec.Command(vmmBinary(t), "run", "-kernel", guest, "-append", "serial 2; serial 3; exit 0",
			"-serial", "unix:"+sock+",server,nowait"))
		first := dial(t, sock)
		if _, err := io.WriteString(first, "ab"); err != nil {
			t.Fatal(err)
		}
		var got syncBuffer
		go io.Copy(&got, first)
		waitPeer(t, &got, `guest: serial got "ab"`, vm)
		first.Close()
		// Served only once vmm has let the first client go.
		second := dial(t, sock)
		defer second.Close()
		var got2 syncBuffer
		go io.Copy(&got2, second)
		if _, err := io.WriteString(second, "cde"); err != nil {
			t.Fatal(err)
		}
		waitPeer(t, &got2, `guest: serial got "cde"`, vm)
		vmEndedWith(t, vm, 0)
	})
	t.Run("hang-up with input still queued", func(t *testing.T) {
		// 40 bytes, more than the UART's 16-byte FIFO holds, then gone at
		// once: every byte still reaches the guest, and the next client
		// is served.
		sock := filepath.Join(t.TempDir(), "com1.sock")
		vm := startVM(t, exec.Command(vmmBinary(t), "run", "-kernel", guest, "-append", "serial 40; serial 3; exit 0",
			"-serial", "unix:"+sock+",server"))
		first := dial(t, sock)
		var got syncBuffer
		go io.Copy(&got, first)
		waitPeer(t, &got, "guest: hello", vm)
		typed := strings.Repeat("0123456789", 4)
		if _, err := io.WriteString(first, typed); err != nil {
			t.Fatal(err)
		}
		first.Close()
		second := dial(t, sock)
		defer second.Close()
		var got2 syncBuffer
		go io.Copy(&got2, second)
		if _, err := io.WriteString(second, "xyz"); err != nil {
			t.Fatal(err)
		}
		// Had any of the 40 been lost, serial 40 would have eaten "xyz".
		waitPeer(t, &got2, `guest: serial got "xyz"`, vm)
		vmEndedWith(t, vm, 0)
	})
}

// TestSerialFileNullNone: -serial file:PATH writes the console to PATH
// and nothing to stdout; null and none discard it; the guest's exit
// status comes through each.
func TestSerialFileNullNone(t *testing.T) {
	needKVM(t)
	f := filepath.Join(t.TempDir(), "console.txt")
	for _, spec := range []string{"file:" + f, "null", "none"} {
		r := runVMM(t, "-kernel", guestELF(t), "-append", "echo to-the-console; exit 4", "-serial", spec)
		if r.status != 4 || r.stdout != "" {
			t.Errorf("-serial %s: status %d, stdout %q; want 4 and nothing (stderr %q)", spec, r.status, r.stdout, r.stderr)
		}
	}
	b, err := os.ReadFile(f)
	if err != nil || !strings.Contains(string(b), "guest: hello") || !strings.Contains(string(b), "to-the-console") {
		t.Errorf("-serial file: %q, %v; want the guest's console", b, err)
	}
}

// TestSerialPty: -serial pty prints the slave's path as QEMU does, and
// a process that opens it talks to COM1 both ways.
func TestSerialPty(t *testing.T) {
	needKVM(t)
	// The guest then runs on (a pty's unread output goes when vmm closes
	// the master at exit), and the test ends it.
	cmd := exec.Command(vmmBinary(t), "run", "-kernel", guestELF(t), "-append", "serial 1; serial 5; loop 100000000000; exit 9", "-serial", "pty")
	vm := startVM(t, cmd)
	waitConsole(t, vm, "(label serial0)", time.Minute)
	m := regexp.MustCompile(`char device redirected to (/dev/pts/\d+) \(label serial0\)`).FindStringSubmatch(vm.con.String())
	if m == nil {
		t.Fatalf("no pty path announced:\n%s", &vm.con)
	}
	fd, err := unix.Open(m[1], unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	pty := os.NewFile(uintptr(fd), m[1])
	defer pty.Close()
	if tio, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		tio.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG
		tio.Iflag &^= unix.ICRNL
		tio.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(fd, unix.TCSETS, tio)
	}
	var got syncBuffer
	go io.Copy(&got, pty)
	// The guest may have started (and printed its hello to nobody)
	// before the pty was opened, or not yet (and would then clear what
	// is typed now from its FIFO): a sentinel, typed until the guest's
	// first command reads it, tells.
	for i := 0; !strings.Contains(got.String(), `guest: serial got "!"`); i++ {
		if i == 12 {
			t.Fatalf("the guest never read a sentinel typed on the pty; it got %q\n%s", got.String(), &vm.con)
		}
		io.WriteString(pty, "!")
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && !strings.Contains(got.String(), `serial got "!"`); {
			select {
			case <-vm.done:
				t.Fatalf("vmm ended (%v)\n%s", vm.err, &vm.con)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if _, err := io.WriteString(pty, serialTyped); err != nil {
		t.Fatal(err)
	}
	waitPeer(t, &got, serialGot, vm)
	cmd.Process.Signal(syscall.SIGTERM)
	vmEndedWith(t, vm, 128+int(syscall.SIGTERM))
}

// ptyVM starts vmm with stdin, stdout on a new pty that is its
// controlling terminal (so ^C on a terminal with signals on reaches it
// as SIGINT) and stderr in diag.
func ptyVM(t *testing.T, args ...string) (*vmProc, *terminal, *exec.Cmd) {
	t.Helper()
	master, slave := openPty(t)
	t.Cleanup(func() { master.Close() })
	cmd := exec.Command(vmmBinary(t), append([]string{"run"}, args...)...)
	diag := &syncBuffer{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, diag
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	p := startVM(t, cmd)
	slave.Close()
	go io.Copy(&p.con, master)
	return p, &terminal{t: t, p: p, master: master, diag: diag}, cmd
}

// TestStdioEscapes: through a real pty, on every stdio form: Ctrl-A h
// lists the keys on stderr, Ctrl-A x quits with status 0, and Ctrl-C
// goes to the guest (-serial stdio and mon:stdio, and -chardev stdio
// with signal=off) or ends vmm with 130 and a line saying so (-chardev
// stdio, whose signal=on is QEMU's default).
func TestStdioEscapes(t *testing.T) {
	needKVM(t)
	guest := guestELF(t)
	const forever = "; loop 10000000000000; exit 9"
	com1 := func(spec string) []string {
		return []string{"-kernel", guest, "-serial", spec, "-append", "serial 1" + forever}
	}
	console := func(props string) []string {
		return []string{"-kernel", guest, "-device", "virtio-serial", "-chardev", "stdio,id=con" + props,
			"-device", "virtconsole,chardev=con,name=con", "-append", "vs con:e:1" + forever}
	}
	for _, tc := range []struct {
		name    string
		args    []string
		ctrlC   string // what shows the guest got ^C; "" means ^C ends vmm
		waitFor string // typed only after this (COM1's FIFO is reset at start)
	}{
		{"serial stdio", com1("stdio"), `guest: serial got "` + "\x03" + `"`, "guest: hello"},
		{"serial mon:stdio", com1("mon:stdio"), `guest: serial got "` + "\x03" + `"`, "guest: hello"},
		{"chardev stdio signal=off", console(",signal=off"), "\x03", ""},
		{"chardev stdio mux=on", console(",mux=on"), "", ""},
		{"chardev stdio", console(""), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, term, _ := ptyVM(t, tc.args...)
			if tc.waitFor != "" {
				term.expect(tc.waitFor, time.Minute)
			}
			term.write("\x01h")
			waitUntil(t, time.Minute, "the Ctrl-A help on stderr", func() bool {
				return strings.Contains(term.diag.String(), "C-a x    exit vmm")
			})
			term.write("\x03")
			if tc.ctrlC == "" {
				vmEndedWith(t, p, 130)
				if !strings.Contains(term.diag.String(), "vmm: terminating on signal 2 (interrupt)") {
					t.Errorf("stderr = %q; want the signal named", term.diag.String())
				}
				return
			}
			term.expect(tc.ctrlC, time.Minute)
			term.write("\x01x")
			vmEndedWith(t, p, 0)
		})
	}
	// Exit statuses of signals follow the shell's 128+N.
	p, _, cmd := ptyVM(t, com1("stdio")...)
	waitConsole(t, p, "guest: hello", time.Minute)
	cmd.Process.Signal(unix.SIGTERM)
	vmEndedWith(t, p, 128+int(unix.SIGTERM))
}

// TestWaitingServer: a port's socket server with wait=on says on stderr
// what it waits for and boots once a client comes; while it waits, the
// terminal's Ctrl-A x still ends vmm (status 0, a line saying so).
func TestWaitingServer(t *testing.T) {
	needKVM(t)
	guest := guestELF(t)
	sock := filepath.Join(t.TempDir(), "w.sock")
	port := []string{"-device", "virtio-serial", "-chardev", "socket,id=w,path=" + sock + ",server=on",
		"-device", "virtserialport,chardev=w,name=w"}
	vm := startVM(t, exec.Command(vmmBinary(t), append([]string{"run", "-kernel", guest, "-append", "echo up; exit 0"}, port...)...))
	waitConsole(t, vm, "vmm: info: waiting for a connection on unix:"+sock+" (chardev w, server=on,wait=on)", time.Minute)
	if strings.Contains(vm.con.String(), "guest: hello") {
		t.Fatalf("the guest started before the client came:\n%s", &vm.con)
	}
	c := dial(t, sock)
	defer c.Close()
	waitConsole(t, vm, "\nup\n", time.Minute)
	vmEndedWith(t, vm, 0)

	// Given up on from the terminal (a -chardev stdio console).
	p, term, _ := ptyVM(t, append([]string{"-kernel", guest, "-chardev", "stdio,id=con", "-device", "virtio-serial",
		"-device", "virtconsole,chardev=con"}, port...)...)
	waitUntil(t, time.Minute, "the waiting line", func() bool {
		return strings.Contains(term.diag.String(), "waiting for a connection on unix:"+sock)
	})
	term.write("\x01x")
	vmEndedWith(t, p, 0)
	if !strings.Contains(term.diag.String(), "vmm: Ctrl-A x before the VM started") {
		t.Errorf("stderr = %q; want a line saying vmm ended before the VM started", term.diag.String())
	}
}
