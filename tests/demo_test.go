package tests

import (
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// demoCommand returns the command `make demo` runs after its
// prerequisites (the last line of `make -n demo`), with vmm taken from
// vmmBinary: `VMM=… BUILD=build … tests/demo.sh`.
func demoCommand(t *testing.T) string {
	t.Helper()
	r := run(t, time.Minute, "make", "-s", "-n", "-C", repoRoot(), "demo", "VMM="+vmmBinary(t))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	last := lines[len(lines)-1]
	if r.status != 0 || !strings.HasSuffix(last, " tests/demo.sh") || !strings.Contains(last, "VMM="+vmmBinary(t)) {
		t.Fatalf("make -n demo: status %d, last line %q; want the tests/demo.sh line\n%s", r.status, last, r.stderr)
	}
	return last
}

// TestDemo runs what `make demo` runs (demoCommand, so the Makefile's
// own line) as a user would on a terminal (a pty), with the port's
// socket moved into a temporary folder (DEMO_SOCK): the instructions it
// prints come first; the shell's prompt follows the boot; the printed
// socat command, run as printed, connects to the port; the printed
// guest commands typed into the shell carry a line from socat to the
// guest's cat (ended by Ctrl-C, which goes to the guest) and "hi" from
// the guest's echo to socat; Ctrl-A x ends vmm with status 0 and socat
// sees the socket close.
func TestDemo(t *testing.T) {
	needKVM(t)
	for _, k := range []string{"socat"} {
		if _, err := exec.LookPath(k); err != nil {
			t.Fatalf("%s missing (make deps installs it): %v", k, err)
		}
	}
	g := shellGuest{Boot: readmeBoot} // timeouts only
	cmdline := demoCommand(t)
	sock := filepath.Join(t.TempDir(), "demo.sock")

	master, slave := openPty(t)
	defer master.Close()
	var diag syncBuffer
	vm := exec.Command("sh", "-c", cmdline)
	vm.Dir = repoRoot()
	vm.Env = append(vm.Environ(), "DEMO_SOCK="+sock)
	vm.Stdin, vm.Stdout, vm.Stderr = slave, slave, &diag
	start := time.Now()
	p := startGroup(t, vm)
	slave.Close()
	go io.Copy(&p.con, master) // ends with EIO when vmm has exited
	term := &terminal{t: t, p: p, master: master, diag: &diag}

	// The instructions, before the boot.
	term.expect("Ctrl-A x quits", g.step())
	term.expect("\n\n", g.step())
	intro := strings.ReplaceAll(p.con.String(), "\r", "")
	t.Logf("demo's introduction:\n%s", intro)
	host := regexp.MustCompile(`(?m)^ +host: +(.*)$`).FindStringSubmatch(intro)
	guest := regexp.MustCompile(`(?m)^ +guest: +(.*)$`).FindAllStringSubmatch(intro, -1)
	if host == nil || len(guest) != 2 || host[1] != "socat - UNIX-CONNECT:"+sock ||
		!strings.HasPrefix(guest[0][1], "cat /dev/virtio-ports/org.vmm.demo") ||
		guest[1][1] != "echo hi > /dev/virtio-ports/org.vmm.demo" {
		t.Fatalf("the demo's introduction lacks the host line %q and the guest's cat and echo lines", "socat - UNIX-CONNECT:"+sock)
	}

	term.expect("vmm-shell: ready", g.boot())
	term.expect(shellPrompt, g.step())
	t.Logf("launch to prompt %v", time.Since(start).Round(time.Millisecond))
	term.run("ls /dev/virtio-ports/", "\norg.vmm.demo\n", g.step())

	// The host side, as printed; what it sends waits in the socket until
	// the guest opens the port.
	socat := exec.Command("sh", "-c", host[1])
	socat.Dir = repoRoot()
	socatIn, err := socat.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var socatOut, socatErr syncBuffer
	socat.Stdout, socat.Stderr = &socatOut, &socatErr
	sp := startGroup(t, socat)
	if _, err := io.WriteString(socatIn, "hello-from-the-host\n"); err != nil {
		t.Fatalf("write to socat: %v", err)
	}

	term.typeLine(guest[0][1], g.step())
	term.expect("\nhello-from-the-host\n", g.step())
	term.write("\x03") // Ctrl-C reaches the guest's cat
	term.expect("\n"+shellPrompt, g.step())
	term.run(guest[1][1], "\n"+shellPrompt, g.step())
	deadline := time.Now().Add(g.step())
	for socatOut.String() != "hi\n" {
		if time.Now().After(deadline) {
			t.Fatalf("socat printed %q within %v of the guest's echo; want %q\nsocat stderr: %s", socatOut.String(), g.step(), "hi\n", &socatErr)
		}
		select {
		case <-sp.done:
			if socatOut.String() != "hi\n" {
				t.Fatalf("socat ended (%v) having printed %q; want %q\n%s", sp.err, socatOut.String(), "hi\n", &socatErr)
			}
		case <-time.After(20 * time.Millisecond):
		}
	}

	term.write("\x01x")
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("vmm still running 10 s after Ctrl-A x\nterminal:\n%s\nstderr:\n%s", &p.con, &diag)
	}
	if p.status() != 0 {
		t.Errorf("make demo's command after Ctrl-A x: status %d (%v); want 0\nstderr:\n%s", p.status(), p.err, &diag)
	}
	select {
	case <-sp.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("socat still connected 10 s after vmm ended")
	}
	if sp.status() != 0 {
		t.Errorf("socat: status %d (%v); want 0 once vmm closed the socket\n%s", sp.status(), sp.err, &socatErr)
	}
}
