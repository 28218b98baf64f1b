package tests

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The QEMU ChardevFlowControl cases, with the test guest (which moves
// data at native speed here) as the guest side.

// vmWith starts vmm with the test guest and extra arguments.
func vmWith(t *testing.T, cmdline string, extra ...string) <-chan result {
	t.Helper()
	args := append([]string{"run", "-kernel", guestELF(t), "-m", "256M", "-append", cmdline}, extra...)
	return startRun(t, 3*time.Minute, vmmBinary(t), args...)
}

// TestFlowControlA_ServerPeerNeverReads: unix server, wait=off, a host
// client that connects and never reads while the guest writes without
// end: the guest keeps running (its COM1 heartbeat stays on time) and
// ends on its own schedule.
func TestFlowControlA_ServerPeerNeverReads(t *testing.T) {
	needKVM(t)
	sock := filepath.Join(t.TempDir(), "a.sock")
	done := vmWith(t, "vs-timeout 2; vs a:w:1G; exit 0",
		"-device", "virtio-serial-device", "-chardev", "socket,id=a,path="+sock+",server=on,wait=off",
		"-device", "virtserialport,chardev=a,name=a")
	c := dial(t, sock)
	defer c.Close()
	r := vmEnded(t, done)
	// The guest's own timeout ends the job: it was never frozen.
	if r.status != 0xE1 || !strings.Contains(r.stdout, "guest: vs a stalled at offset") {
		t.Fatalf("exit %d; want the guest's stall report (0xE1)\n%s\n%s", r.status, withoutHeartbeats(r.stdout), r.stderr)
	}
	checkHeartbeat(t, r.stdout, time.Second)
}

// TestFlowControlB_ClientToListener: vmm as a unix client of a socat
// UNIX-LISTEN listener: the guest's data appears.
func TestFlowControlB_ClientToListener(t *testing.T) {
	needKVM(t)
	socat, err := exec.LookPath("socat")
	if err != nil {
		t.Fatalf("socat not installed (make deps installs it): %v", err)
	}
	dir := t.TempDir()
	sock, out := filepath.Join(dir, "b.sock"), filepath.Join(dir, "b.out")
	listener := exec.Command(socat, "-u", "UNIX-LISTEN:"+sock, "CREATE:"+out)
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	defer listener.Process.Kill()
	waitUntil(t, 5*time.Second, "socat to bind "+sock, func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	done := vmWith(t, "vs b:w:8M; exit 0",
		"-device", "virtio-serial-device", "-chardev", "socket,id=b,path="+sock,
		"-device", "virtserialport,chardev=b,name=b")
	r := finish(t, done)
	checkLines(t, r.stdout, []string{"guest: vs b:w:8M done bytes=8388608"})
	listener.Wait() // socat ends when vmm's side closes
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := pattern(0, 8<<20); string(got) != string(want) {
		t.Errorf("socat received %d bytes; want the 8 MiB pattern", len(got))
	}
}

// TestFlowControlC_PipeWithoutReader: a named pipe with no reader
// while the guest writes 32 MiB: the guest keeps running, and a reader
// that comes late gets every byte.
func TestFlowControlC_PipeWithoutReader(t *testing.T) {
	needKVM(t)
	base := filepath.Join(t.TempDir(), "c")
	for _, s := range []string{".in", ".out"} {
		if err := unix.Mkfifo(base+s, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const size = 32 << 20
	done := vmWith(t, "vs-timeout 120; vs c:w:32M; exit 0",
		"-device", "virtio-serial-device", "-chardev", "pipe,id=c,path="+base,
		"-device", "virtserialport,chardev=c,name=c")
	time.Sleep(2 * time.Second) // nobody reads: the port stalls, the guest does not
	f, err := os.Open(base + ".out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := receive(f, 0, size); err != nil {
		t.Fatalf("late reader: %v", err)
	}
	r := finish(t, done)
	checkLines(t, r.stdout, []string{"guest: vs c:w:32M done bytes=33554432"})
	checkHeartbeat(t, r.stdout, time.Second)
}

// TestFlowControlD_ReconnectThenWrite: a client connects, reads,
// disconnects and reconnects; data written after the reconnect appears
// (QEMU's old bug was a stale watch that never fired again).
func TestFlowControlD_ReconnectThenWrite(t *testing.T) {
	needKVM(t)
	sock := filepath.Join(t.TempDir(), "d.sock")
	// The guest writes 1 MiB, then 1 MiB more after the first peer left.
	done := vmWith(t, "vs d:w:1M; vs-timeout 60; vs d:w:1M; exit 0",
		"-device", "virtio-serial-device", "-chardev", "socket,id=d,path="+sock+",server=on,wait=off",
		"-device", "virtserialport,chardev=d,name=d")
	c := dial(t, sock)
	if err := receive(c, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c2 := dial(t, sock)
	defer c2.Close()
	if err := receive(c2, 1<<20, 1<<20); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
	finish(t, done)
}

// TestFlowControlE_OpenWriteClose: 100 host writers that each connect,
// write one chunk and close, then one that stays open for 100 writes:
// every chunk arrives once, in order.
func TestFlowControlE_OpenWriteClose(t *testing.T) {
	needKVM(t)
	sock := filepath.Join(t.TempDir(), "e.sock")
	const chunk = 4096
	total := 200 * chunk
	done := vmWith(t, fmt.Sprintf("vs-timeout 120; vs e:r:%d; exit 0", total),
		"-device", "virtio-serial-device", "-chardev", "socket,id=e,path="+sock+",server=on,wait=off",
		"-device", "virtserialport,chardev=e,name=e")
	off := int64(0)
	for i := 0; i < 100; i++ {
		c := dial(t, sock)
		if err := send(c, off, chunk); err != nil {
			t.Fatal(err)
		}
		off += chunk
		c.Close() // the next writer waits in the backlog until vmm sees this one leave
	}
	c := dial(t, sock)
	for i := 0; i < 100; i++ {
		if err := send(c, off, chunk); err != nil {
			t.Fatal(err)
		}
		off += chunk
	}
	r := finish(t, done)
	c.Close()
	checkLines(t, r.stdout, []string{fmt.Sprintf("guest: vs e:r:%d done bytes=%d", total, total)})
}

// TestMaxPorts31: 31 named ports at once, each usable.
func TestMaxPorts31(t *testing.T) {
	needKVM(t)
	dir := t.TempDir()
	args := []string{"-device", "virtio-serial-device,max_ports=31"}
	var jobs []string
	for i := 1; i <= 30; i++ {
		n := fmt.Sprintf("p%d", i)
		args = append(args, "-chardev", fmt.Sprintf("socket,id=%s,path=%s/%s.sock,server=on,wait=off", n, dir, n),
			"-device", fmt.Sprintf("virtserialport,chardev=%s,name=%s,nr=%d", n, n, i))
		jobs = append(jobs, n+":w:256K")
	}
	args = append(args, "-chardev", "socket,id=con,path="+dir+"/con.sock,server=on,wait=off",
		"-device", "virtconsole,chardev=con,name=con")
	jobs = append(jobs, "con:w:256K")
	done := vmWith(t, "vs-ports; vs "+strings.Join(jobs, " ")+"; exit 0", args...)
	errs := make(chan error, 31)
	for i := 0; i <= 30; i++ {
		n := fmt.Sprintf("p%d", i)
		if i == 0 {
			n = "con"
		}
		c := dial(t, filepath.Join(dir, n+".sock"))
		defer c.Close()
		go func(c net.Conn, n string) { errs <- wrap(n, receive(c, 0, 256<<10)) }(c, n)
	}
	for i := 0; i <= 30; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	r := finish(t, done)
	checkLines(t, r.stdout, []string{"guest: vs port 0 name=con console=1 open=1", "guest: vs port 30 name=p30 console=0 open=1", "guest: vs max_ports=31"})
}
