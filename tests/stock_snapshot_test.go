package tests

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStockSnapshot: a stock kernel keeps running after a restore (#13).
// Debian's cloud kernel boots the tests/stock shell userland with COM1
// on a pty as the shell's console, a QMP socket and a virtio-serial-pci
// port on a unix socket. At the prompt, with a host peer connected, a
// background `head -n 1` opens the port and blocks reading it. QMP
// migrate saves the running VM (MIGRATION completed, STOP; the VM stays
// paused), quit ends that vmm, and a new vmm with the same options (new
// pty, new socket paths) plus -S -incoming restores it paused; the
// guest's port is still open, a new host peer connects, and cont runs
// it. The restored guest: answers a typed command, sleeps a second
// (timers), its blocked reader gets a line the new host peer sends, a
// line it writes to the port reaches the host peer, and /sbin/poweroff
// ends vmm with status 0.
func TestStockSnapshot(t *testing.T) {
	if !runsHere(t) {
		return
	}
	bz, _ := stockKernel(t, "cloud")
	g := shellGuest{Kernel: bz, Initrd: stockShell(t, "cloud"), Cmdline: "console=ttyS0 quiet",
		Mem: "512M", Transport: "virtio-serial-pci", Boot: 5 * time.Minute, Step: 2 * time.Minute}
	const port = "org.vmm.data"
	snap := filepath.Join(t.TempDir(), "stock.snap")
	// vm is the vmm command with its sockets in dir, COM1 on stdio.
	vm := func(dir string, extra ...string) *exec.Cmd {
		return exec.Command(vmmBinary(t), g.vmmArgs(g.Cmdline, append([]string{"-serial", "stdio",
			"-qmp", "unix:" + filepath.Join(dir, "qmp.sock") + ",server=on,wait=off",
			"-device", g.transport() + ",max_ports=4",
			"-chardev", "socket,id=data,path=" + filepath.Join(dir, "data.sock") + ",server=on,wait=off",
			"-device", "virtserialport,chardev=data,name=" + port}, extra...)...)...)
	}
	// startTerm starts cmd with stdin and stdout on a new pty.
	startTerm := func(cmd *exec.Cmd) *terminal {
		master, slave := openPty(t)
		t.Cleanup(func() { master.Close() })
		term := &terminal{t: t, master: master, diag: &syncBuffer{}}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, term.diag
		term.p = startVM(t, cmd)
		slave.Close()
		go io.Copy(&term.p.con, master) // ends with EIO when vmm has exited
		return term
	}
	frontendOpen := func(c *qmpClient) bool {
		var cs []struct {
			Label        string `json:"label"`
			FrontendOpen bool   `json:"frontend-open"`
		}
		c.must("query-chardev", nil, &cs)
		for _, x := range cs {
			if x.Label == "data" {
				return x.FrontendOpen
			}
		}
		t.Fatalf("query-chardev lacks chardev data: %+v", cs)
		return false
	}

	// Boot, and leave a reader blocked on the port.
	dirA := t.TempDir()
	a := startTerm(vm(dirA))
	ready := waitConsole(t, a.p, "vmm-shell: ready", g.boot())
	a.expect(shellPrompt, g.step())
	t.Logf("boot to ready line %v", ready.Round(time.Millisecond))
	if !strings.Contains(strings.ReplaceAll(a.p.con.String(), "\r", ""), " name="+port+"\n") {
		t.Fatalf("the init did not list port %s\n%s", port, &a.p.con)
	}
	qa := connectQMP(t, filepath.Join(dirA, "qmp.sock"))
	a.qmp = qa
	a.run("echo before-$((6*7))", "\nbefore-42\n", g.step())
	// (A read with no host peer connected is at its end at once.)
	oldPeer := dial(t, filepath.Join(dirA, "data.sock"))
	defer oldPeer.Close()
	a.run("head -n 1 /dev/virtio-ports/"+port+" >/tmp/got &", "\n"+shellPrompt, g.step())
	waitUntil(t, g.step(), "the guest's reader to open the port", func() bool { return frontendOpen(qa) })

	saved := time.Now()
	saveSnapshot(qa, snap, g.step())
	saveTime := time.Since(saved)
	var mig map[string]any
	qa.must("query-migrate", nil, &mig)
	if mig["status"] != "completed" {
		t.Fatalf("query-migrate = %v; want status completed", mig)
	}
	qa.waitEvent("STOP", 1, 10*time.Second)
	if s := qa.runState(); s != "postmigrate" {
		t.Errorf("query-status after migrate = %q; want postmigrate", s)
	}
	fi, err := os.Stat(snap)
	if err != nil {
		t.Fatal(err)
	}
	qa.must("quit", nil, nil)
	select {
	case <-a.p.done:
	case <-time.After(g.step()):
		t.Fatalf("the saved vmm still runs %v after quit\nstderr:\n%s", g.step(), a.diag)
	}
	if a.p.status() != 0 {
		t.Errorf("the saved vmm's exit status after quit = %d (%v); want 0\nstderr:\n%s", a.p.status(), a.p.err, a.diag)
	}
	t.Logf("migrate: %v, file %d MiB (%.1f MiB allocated)", saveTime.Round(time.Millisecond), fi.Size()>>20, float64(allocated(fi))/(1<<20))

	// Restore, with the same options and new sockets.
	dirB := t.TempDir()
	restored := time.Now()
	b := startTerm(vm(dirB, "-S", "-incoming", "file:"+snap))
	waitUntil(t, 30*time.Second, "the restored vmm's QMP socket", func() bool {
		_, err := os.Stat(filepath.Join(dirB, "qmp.sock"))
		return err == nil
	})
	qb := connectQMP(t, filepath.Join(dirB, "qmp.sock"))
	b.qmp = qb
	if s := qb.runState(); s != "paused" {
		t.Fatalf("restored VM with -S is %q; want paused\nstderr:\n%s", s, b.diag)
	}
	if !frontendOpen(qb) {
		t.Errorf("restored VM: the guest's reader no longer has the port open")
	}
	// The new host peer is there before the guest runs: the reader,
	// told the host side is open, keeps waiting for data.
	peer := dial(t, filepath.Join(dirB, "data.sock"))
	defer peer.Close()
	qb.must("cont", nil, nil)
	qb.waitEvent("RESUME", 1, 10*time.Second)
	if s := qb.runState(); s != "running" {
		t.Fatalf("restored VM after cont is %q; want running\nstderr:\n%s", s, b.diag)
	}

	typed := time.Now()
	b.run("echo after-$((6*7))", "\nafter-42\n", g.step())
	t.Logf("restore (-S, cont) to the first answer at the prompt: %v (the command answered in %v)",
		time.Since(restored).Round(time.Millisecond), time.Since(typed).Round(time.Millisecond))
	slept := time.Now()
	b.run("sleep 1; echo slept-$?", "\nslept-0\n", g.step())
	t.Logf("sleep 1 took %v", time.Since(slept).Round(time.Millisecond))

	// The port, both ways: the reader blocked since before the save gets
	// the host's line, and a line the guest writes reaches the host.
	if _, err := peer.Write([]byte("from-host-4711\n")); err != nil {
		t.Fatal(err)
	}
	b.run("wait; cat /tmp/got", "\nfrom-host-4711\n", g.step())
	// (Lines stay under the line editor's 80 columns, which wraps them.)
	b.run("p=/dev/virtio-ports/"+port, "\n"+shellPrompt, g.step())
	b.run("echo from-guest-$((6*7)) >$p; echo wrote-$?", "\nwrote-0\n", g.step())
	peer.SetReadDeadline(time.Now().Add(g.step()))
	line, err := bufio.NewReader(peer).ReadString('\n')
	if err != nil || line != "from-guest-42\n" {
		t.Errorf("host peer read %q (%v); want %q", line, err, "from-guest-42\n")
	}

	// The guest's own poweroff ends the restored vmm with status 0.
	// (/sbin/poweroff is the userland's vmm-off; the shell's busybox
	// applet of that name would only signal init, which ignores it.)
	b.typeLine("/sbin/poweroff", g.step())
	b.expect("vmm-shell: poweroff", g.step())
	select {
	case <-b.p.done:
	case <-time.After(g.step()):
		t.Fatalf("restored vmm still runs %v after poweroff\nterminal:\n%s\nstderr:\n%s", g.step(), &b.p.con, b.diag)
	}
	if b.p.status() != 0 {
		t.Errorf("restored vmm exit status = %d (%v); want 0 (the guest powered off)\nstderr:\n%s", b.p.status(), b.p.err, b.diag)
	}
	if out := b.p.con.String(); strings.Contains(out, "BUG:") || strings.Contains(out, "watchdog") {
		t.Errorf("the restored kernel complained:\n%s", out)
	}
	t.Logf("restored terminal:\n%s", &b.p.con)
}
