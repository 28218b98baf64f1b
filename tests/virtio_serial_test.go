package tests

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serialVM starts vmm with the test guest and one unix-socket port per
// name (server=on,wait=off), and returns the socket paths and a channel
// with the finished process.
func serialVM(t *testing.T, names []string, cmdline string) (map[string]string, <-chan result) {
	t.Helper()
	return serialVMOn(t, "virtio-serial-device", names, cmdline)
}

// serialVMOn is serialVM with the transport's device name.
func serialVMOn(t *testing.T, transport string, names []string, cmdline string) (map[string]string, <-chan result) {
	t.Helper()
	dir := t.TempDir()
	socks := map[string]string{}
	args := []string{"run", "-kernel", guestELF(t), "-m", "256M", "-device", transport + ",max_ports=8"}
	for _, n := range names {
		socks[n] = filepath.Join(dir, n+".sock")
		args = append(args, "-chardev", fmt.Sprintf("socket,id=%s,path=%s,server=on,wait=off", n, socks[n]),
			"-device", "virtserialport,chardev="+n+",name="+n)
	}
	args = append(args, "-append", cmdline)
	return socks, startRun(t, 3*time.Minute, vmmBinary(t), args...)
}

// finish waits for the VM and requires exit status 0 and no guest errors.
func finish(t *testing.T, done <-chan result) result {
	t.Helper()
	r := vmEnded(t, done)
	if r.status != 0 {
		t.Fatalf("exit status %d\nstdout (no heartbeats):\n%s\nstderr:\n%s", r.status, withoutHeartbeats(r.stdout), r.stderr)
	}
	return r
}

func withoutHeartbeats(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "heartbeat") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestVirtioSerialFourPortsBothWays: four ports at once, each moving
// 64 MiB each way, every byte checked on both sides.
func TestVirtioSerialFourPortsBothWays(t *testing.T) {
	needKVM(t)
	const size = 64 << 20
	names := []string{"p0", "p1", "p2", "p3"}
	var jobs []string
	for _, n := range names {
		jobs = append(jobs, fmt.Sprintf("%s:w:64M %s:r:64M", n, n))
	}
	socks, done := serialVM(t, names, "vs "+strings.Join(jobs, " ")+"; exit 0")
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(names))
	for _, n := range names {
		c := dial(t, socks[n])
		defer c.Close()
		wg.Add(2)
		go func() { defer wg.Done(); errs <- wrap(n+" host read", receive(c, 0, size)) }()
		go func() { defer wg.Done(); errs <- wrap(n+" host write", send(c, 0, size)) }()
	}
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	r := finish(t, done)
	for _, n := range names {
		checkLines(t, r.stdout, []string{fmt.Sprintf("guest: vs %s:w:64M done bytes=%d", n, size)})
		checkLines(t, r.stdout, []string{fmt.Sprintf("guest: vs %s:r:64M done bytes=%d", n, size)})
	}
	t.Logf("512 MiB through 4 ports in %v (%.0f MiB/s aggregate)", elapsed.Round(time.Millisecond), 512/elapsed.Seconds())
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// TestVirtioSerialStalledPeer: a host peer that connects and never
// reads stalls only its own port's writer; the other port finishes and
// the COM1 heartbeat keeps going; once the peer reads, every byte
// arrives.
func TestVirtioSerialStalledPeer(t *testing.T) {
	needKVM(t)
	const stuckSize, freeSize = 16 << 20, 64 << 20
	socks, done := serialVM(t, []string{"stuck", "free"}, "vs-timeout 120; vs stuck:w:16M free:w:64M; exit 0")
	stuck := dial(t, socks["stuck"])
	defer stuck.Close()
	free := dial(t, socks["free"])
	defer free.Close()
	if err := receive(free, 0, freeSize); err != nil {
		t.Fatalf("free port while the other was stuck: %v", err)
	}
	// The stuck port cannot have finished: its data is held in the
	// guest's queue and the socket buffer. Let the guest run stalled.
	time.Sleep(time.Second)
	if err := receive(stuck, 0, stuckSize); err != nil {
		t.Fatalf("stuck port after the peer started reading: %v", err)
	}
	r := finish(t, done)
	checkLines(t, r.stdout, []string{"guest: vs stuck:w:16M done bytes=16777216", "guest: vs free:w:64M done bytes=67108864"})
	checkHeartbeat(t, r.stdout, time.Second)
}

// TestVirtioSerialReconnect: the host peer leaves mid-stream and a new
// one connects. The first peer shuts its read side, counts what it
// received but never read (its own to discard), and closes; the second
// must get the stream from exactly there: nothing lost, nothing twice.
func TestVirtioSerialReconnect(t *testing.T) {
	needKVM(t)
	const size = 32 << 20
	socks, done := serialVM(t, []string{"p"}, "vs-timeout 120; vs p:w:32M; exit 0")
	c := dial(t, socks["p"])
	const firstPart = 5 << 20
	if err := receive(c, 0, firstPart); err != nil {
		t.Fatal(err)
	}
	discarded := shutdownAndCount(t, c)
	c.Close()
	time.Sleep(50 * time.Millisecond) // the guest writes on into a disconnected port
	c2 := dial(t, socks["p"])
	defer c2.Close()
	resume := int64(firstPart + discarded)
	if err := receive(c2, resume, size-resume); err != nil {
		t.Fatalf("second peer, resuming at %d (first peer read %d, discarded %d): %v", resume, firstPart, discarded, err)
	}
	r := finish(t, done)
	checkLines(t, r.stdout, []string{"guest: vs p:w:32M done bytes=33554432"})
	t.Logf("first peer read %d bytes and discarded %d unread; the second got the rest", firstPart, discarded)
}

// shutdownAndCount shuts the read side of a unix socket (the device's
// next write then fails and it sees the peer gone) and returns how many
// received bytes were left unread.
func shutdownAndCount(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	raw.Control(func(fd uintptr) {
		unix.Shutdown(int(fd), unix.SHUT_RD)
		n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestVirtioSerialUnderQEMU: the test guest's driver against QEMU's own
// virtio-serial-device — an independent implementation of the device —
// with the same commands and host peers.
func TestVirtioSerialUnderQEMU(t *testing.T) {
	needKVM(t)
	qemu := qemuBinary(t)
	const size = 16 << 20
	dir := t.TempDir()
	sock := func(n string) string { return filepath.Join(dir, n+".sock") }
	args := append(qemuArgs("1", guestELF(t), "vs p0:w:16M p1:r:16M p1:w:1M; exit 0"),
		// QEMU 7.2's virtio-mmio is legacy (version 1) unless told otherwise.
		"-global", "virtio-mmio.force-legacy=false",
		"-device", "virtio-serial-device,max_ports=8")
	for _, n := range []string{"p0", "p1"} {
		args = append(args, "-chardev", fmt.Sprintf("socket,id=%s,path=%s,server=on,wait=off", n, sock(n)),
			"-device", "virtserialport,chardev="+n+",name="+n)
	}
	done := startRun(t, 3*time.Minute, qemu, args...)
	p0, p1 := dial(t, sock("p0")), dial(t, sock("p1"))
	defer p0.Close()
	defer p1.Close()
	errs := make(chan error, 3)
	go func() { errs <- wrap("p0 read", receive(p0, 0, size)) }()
	go func() { errs <- wrap("p1 write", send(p1, 0, size)) }()
	go func() { errs <- wrap("p1 read", receive(p1, 0, 1<<20)) }()
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	r := vmEnded(t, done)
	if r.status != 1 { // QEMU's debug-exit: 2*0+1
		t.Fatalf("QEMU exit status %d; want 1\nstdout:\n%s\nstderr:\n%s", r.status, withoutHeartbeats(r.stdout), r.stderr)
	}
	checkLines(t, r.stdout, []string{"guest: vs p0:w:16M done bytes=16777216", "guest: vs p1:r:16M done bytes=16777216"})
}

// TestVirtioSerialPCI: the same device behind virtio-pci, the test
// guest's driver finding it by PCI enumeration, with MSI-X interrupts
// and with INTx.
func TestVirtioSerialPCI(t *testing.T) {
	needKVM(t)
	const size = 64 << 20
	for _, mode := range []struct{ name, setup, irqLine string }{
		{"msix", "vs-irq on", "msix=1"},
		{"intx", "vs-msix off; vs-irq on", "msix=0"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			socks, done := serialVMOn(t, "virtio-serial-pci", []string{"p0", "p1"},
				mode.setup+"; vs-ports; vs p0:w:64M p1:r:64M; exit 0")
			p0, p1 := dial(t, socks["p0"]), dial(t, socks["p1"])
			defer p0.Close()
			defer p1.Close()
			errs := make(chan error, 2)
			go func() { errs <- wrap("p0 read", receive(p0, 0, size)) }()
			go func() { errs <- wrap("p1 write", send(p1, 0, size)) }()
			for i := 0; i < 2; i++ {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			r := finish(t, done)
			if !strings.Contains(r.stdout, "guest: vs dev 0 pci=00:01.0 "+mode.irqLine) {
				t.Errorf("guest did not find the device over PCI with %s\n%s", mode.irqLine, withoutHeartbeats(r.stdout))
			}
			checkLines(t, r.stdout, []string{"guest: vs p0:w:64M done bytes=67108864", "guest: vs p1:r:64M done bytes=67108864"})
		})
	}
}

// TestVirtioSerialPCIUnderQEMU: the guest's PCI driver against QEMU's
// virtio-serial-pci on q35.
func TestVirtioSerialPCIUnderQEMU(t *testing.T) {
	needKVM(t)
	qemu := qemuBinary(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "p0.sock")
	args := []string{"-enable-kvm", "-M", "q35", "-cpu", "host,-arch-capabilities", "-m", "256M",
		"-nodefaults", "-nographic", "-no-user-config", "-serial", "stdio",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-device", "virtio-serial-pci,max_ports=8",
		"-chardev", "socket,id=p0,path=" + sock + ",server=on,wait=off", "-device", "virtserialport,chardev=p0,name=p0",
		"-kernel", guestELF(t), "-append", "vs-irq on; vs p0:w:16M; exit 0"}
	done := startRun(t, 3*time.Minute, qemu, args...)
	c := dial(t, sock)
	defer c.Close()
	if err := receive(c, 0, 16<<20); err != nil {
		t.Error(err)
	}
	r := vmEnded(t, done)
	if r.status != 1 {
		t.Fatalf("QEMU exit status %d; want 1\n%s\n%s", r.status, withoutHeartbeats(r.stdout), r.stderr)
	}
	checkLines(t, r.stdout, []string{"guest: vs p0:w:16M done bytes=16777216"})
}
