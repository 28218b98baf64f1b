package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// snapshotPorts are the port options of the continuity test, with the
// sockets in dir (a restore may use other paths: chardevs are re-made
// from its command line).
func snapshotPorts(dir string, extra ...string) []string {
	return snapshotPortsOn("virtio-serial-device", dir, extra...)
}

// snapshotPortsOn is snapshotPorts with the controller's device name.
func snapshotPortsOn(transport, dir string, extra ...string) []string {
	args := []string{"-m", "256M", "-device", transport + ",max_ports=4"}
	for _, n := range []string{"out", "in"} {
		args = append(args, "-chardev", fmt.Sprintf("socket,id=%s,path=%s,server=on,wait=off", n, filepath.Join(dir, n+".sock")),
			"-device", "virtserialport,chardev="+n+",name="+n)
	}
	return append(args, extra...)
}

// drainTo reads c to its end (the peer gone), checking the pattern from
// off on, and returns how many bytes it read.
func drainTo(t *testing.T, c net.Conn, off int64) int64 {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 256<<10)
	var got int64
	for {
		k, err := c.Read(buf)
		if k > 0 {
			if err := receive(bytes.NewReader(buf[:k]), off+got, int64(k)); err != nil {
				t.Fatalf("old peer: %v", err)
			}
			got += int64(k)
		}
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("old peer after %d bytes: %v", got, err)
		}
	}
}

// TestSnapshotPortContinuity: byte-exact continuity of virtio-serial
// ports across a snapshot. The test guest writes a 16 MiB stream to
// port "out" and reads an 8 MiB one from port "in". The host reader of
// "out" stops after 2 MiB, so the guest's writes are held (the chain
// and its offset in the device, the rest in the guest's queue); the
// host has written 1 MiB to "in", all consumed. QMP migrate saves the
// running VM to a file (MIGRATION setup, active, completed; STOP; the
// VM stays paused), that vmm is killed, and the old "out" peer reads
// what its socket still held. A new vmm restores the file with
// -incoming (new socket paths) and runs (saved running): a new "out"
// reader gets the stream from exactly the next byte, a new "in" writer
// sends from 1 MiB on, and the guest checks every byte and exits 0.
// Then: -S keeps a restored VM paused; mismatches and a corrupt or
// truncated file are refused with one line and status 1.
func TestSnapshotPortContinuity(t *testing.T) {
	needKVM(t)
	testSnapshotContinuity(t, "virtio-serial-device", true)
}

// TestSnapshotPortContinuityPCI is the continuity case on virtio-pci
// (config space, MSI-X table and vectors restored).
func TestSnapshotPortContinuityPCI(t *testing.T) {
	needKVM(t)
	testSnapshotContinuity(t, "virtio-serial-pci", false)
}

// saveSnapshot saves the VM behind qa to path as a libvirt client does:
// the "events" capability on, migrate, then the MIGRATION events up to
// completed (setup, active, completed).
func saveSnapshot(qa *qmpClient, path string, timeout time.Duration) {
	qa.t.Helper()
	qa.must("migrate-set-capabilities", map[string]any{"capabilities": []map[string]any{{"capability": "events", "state": true}}}, nil)
	qa.must("migrate", map[string]string{"uri": "file:" + path}, nil)
	qa.waitEvent("MIGRATION", 3, timeout)
}

func testSnapshotContinuity(t *testing.T, transport string, more bool) {
	snapshotPorts := func(dir string, extra ...string) []string { return snapshotPortsOn(transport, dir, extra...) }
	const outSize, inSize, firstRead, firstSent = 16 << 20, 8 << 20, 2 << 20, 1 << 20
	dirA, dirB := t.TempDir(), t.TempDir()
	snap := filepath.Join(t.TempDir(), "vm.snap")
	guest := fmt.Sprintf("vs-irq on; vs-timeout 600; vs out:w:%d in:r:%d; exit 0", outSize, inSize)
	a := startQMPVM(t, append([]string{"-kernel", guestELF(t), "-append", guest}, snapshotPorts(dirA)...)...)
	qa := connectQMP(t, a.sock)
	// The guest consumes what was sent; "out" fills its socket and holds.
	out, in := startExchange(t, qa, filepath.Join(dirA, "out.sock"), filepath.Join(dirA, "in.sock"),
		firstRead, firstSent, "in", "out", 30*time.Second)
	defer out.Close()
	defer in.Close()
	var mig map[string]any
	qa.must("query-migrate", nil, &mig)
	if len(mig) != 0 {
		t.Errorf("query-migrate before any migrate = %v; want {}", mig)
	}
	if err := qa.run("migrate", map[string]string{"uri": "tcp:localhost:4444"}, nil); err == nil || !strings.Contains(err.Error(), "uri") {
		t.Errorf("migrate to tcp: = %v; want a GenericError about the uri", err)
	}
	// A save that fails (no such folder) is reported, and the VM runs on.
	qa.must("migrate", map[string]string{"uri": "file:" + filepath.Join(dirA, "none", "vm.snap")}, nil)
	qa.waitEvent("RESUME", 1, 30*time.Second)
	qa.must("query-migrate", nil, &mig)
	if mig["status"] != "failed" || !strings.Contains(fmt.Sprint(mig["error-desc"]), "none") {
		t.Errorf("query-migrate after a failed save = %v; want status failed and an error-desc naming the path", mig)
	}
	if s := qa.runState(); s != "running" {
		t.Errorf("query-status after a failed save = %q; want running", s)
	}
	// Migration capabilities, QEMU's: an unknown one and one vmm cannot
	// honour are refused; "events" turns on the MIGRATION events (the
	// failed save above, without it, sent none).
	for _, c := range []struct{ name, want string }{
		{"bogus", "does not accept value 'bogus'"},
		{"xbzrle", "'xbzrle' is not supported"},
	} {
		err := qa.run("migrate-set-capabilities", map[string]any{"capabilities": []map[string]any{{"capability": c.name, "state": true}}}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("migrate-set-capabilities %s = %v; want an error saying %q", c.name, err, c.want)
		}
	}
	start := time.Now()
	saveSnapshot(qa, snap, 30*time.Second)
	saveTime := time.Since(start)
	var statuses []string
	for _, e := range qa.eventList() {
		if e.Event == "MIGRATION" {
			statuses = append(statuses, fmt.Sprint(e.Data["status"]))
		}
	}
	if got := strings.Join(statuses, ","); got != "setup,active,completed" {
		t.Errorf("MIGRATION events = %s; want setup,active,completed (none for the save before \"events\" was on)", got)
	}
	qa.waitEvent("STOP", 2, time.Second)
	qa.must("query-migrate", nil, &mig)
	if mig["status"] != "completed" {
		t.Errorf("query-migrate = %v; want status completed", mig)
	}
	if s := qa.runState(); s != "postmigrate" {
		t.Errorf("query-status after migrate = %q; want postmigrate (QEMU's)", s)
	}
	if err := qa.run("migrate", map[string]string{"uri": "file:" + snap + ".2"}, nil); err == nil || !strings.Contains(err.Error(), "previous migration") {
		t.Errorf("a second migrate before cont = %v; want QEMU's refusal (paused due to previous migration)", err)
	}
	fi, err := os.Stat(snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("migrate to a file: %v, file %d MiB (%.1f MiB allocated)", saveTime.Round(time.Millisecond), fi.Size()>>20, float64(allocated(fi))/(1<<20))
	a.cmd.Process.Kill()
	a.cmd.Wait()
	// What the old peer's socket took before the snapshot is its own.
	oldGot := firstRead + drainTo(t, out, firstRead)

	bArgs := append([]string{"-incoming", "file:" + snap}, snapshotPorts(dirB)...)
	b := startQMPVM(t, bArgs...)
	qb := connectQMP(t, b.sock)
	if s := qb.runState(); s != "running" {
		t.Errorf("restored VM (saved running) is %q; want running", s)
	}
	out2 := dial(t, filepath.Join(dirB, "out.sock"))
	defer out2.Close()
	in2 := dial(t, filepath.Join(dirB, "in.sock"))
	defer in2.Close()
	errs := make(chan error, 2)
	go func() { errs <- wrap("new out reader", receive(out2, oldGot, outSize-oldGot)) }()
	go func() { errs <- wrap("new in writer", send(in2, firstSent, inSize-firstSent)) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if st := b.wait(t); st != 0 {
		t.Fatalf("restored vmm: exit status %d\nstdout:\n%s\nstderr:\n%s", st, withoutHeartbeats(b.out.String()), b.errb.String())
	}
	checkLines(t, b.out.String(), []string{
		fmt.Sprintf("guest: vs out:w:%d done bytes=%d", outSize, outSize),
		fmt.Sprintf("guest: vs in:r:%d done bytes=%d", inSize, inSize),
	})
	t.Logf("old peer read %d bytes; the restored VM sent the other %d from there", oldGot, outSize-oldGot)

	if !more {
		return
	}
	// -S keeps a restored VM paused until cont.
	d := startQMPVM(t, append([]string{"-S", "-incoming", "file:" + snap}, snapshotPorts(t.TempDir())...)...)
	qd := connectQMP(t, d.sock)
	if s := qd.runState(); s != "paused" {
		t.Errorf("restored with -S: %q; want paused", s)
	}
	qd.must("quit", nil, nil)
	d.wait(t)

	refuseSnapshots(t, snap, dirB)
}

// allocated is the disk space a file takes (RAM pages that were zero
// are holes).
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}

// refuseSnapshots: each mismatch with the saved VM, and a corrupt or
// truncated file, ends vmm with status 1 and one line naming it.
func refuseSnapshots(t *testing.T, snap, dir string) {
	t.Helper()
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corrupt := append([]byte(nil), data...)
	corrupt[300] ^= 0x40 // in the state section, under the checksum
	ports := snapshotPorts(dir)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"other -m", append(append([]string{"-incoming", "file:" + snap}, ports...), "-m", "128M"), "saved with -m 256M, this run has -m 128M"},
		{"other -smp", append(append([]string{"-incoming", "file:" + snap}, ports...), "-smp", "2"), "saved with -smp 1, this run has -smp 2"},
		{"other devices", []string{"-incoming", "file:" + snap, "-m", "256M"}, "saved with machine"},
		{"truncated", append([]string{"-incoming", "file:" + write("short.snap", data[:len(data)-4096])}, ports...), "truncated"},
		{"corrupt", append([]string{"-incoming", "file:" + write("bad.snap", corrupt)}, ports...), "checksum mismatch"},
		{"missing", append([]string{"-incoming", "file:" + filepath.Join(dir, "none.snap")}, ports...), "no such file"},
	} {
		r := runVMM(t, tc.args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.status != 1 || len(lines) != 1 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%s: status %d, stderr %q, stdout %q; want 1 and one line with %q", tc.name, r.status, r.stderr, r.stdout, tc.want)
		}
	}
}

// TestSnapshotSavedPaused: a VM saved while paused comes back paused
// (QEMU's rule) and runs on at cont; its loop then finishes and it
// exits with its status. Its virtio-serial-pci device was never set up
// by the guest.
func TestSnapshotSavedPaused(t *testing.T) {
	needKVM(t)
	snap := filepath.Join(t.TempDir(), "vm.snap")
	// A virtio-serial device the guest never drives: an inactive device
	// and an unconfigured PCI function are saved and restored too.
	devs := []string{"-device", "virtio-serial-pci", "-chardev", "null,id=n", "-device", "virtserialport,chardev=n,name=n"}
	a := startQMPVM(t, append([]string{"-kernel", guestELF(t), "-append", "echo ready; loop 3000000000; echo looped; exit 7"}, devs...)...)
	qa := connectQMP(t, a.sock)
	waitUntil(t, 30*time.Second, "the guest's ready line", func() bool { return strings.Contains(a.out.String(), "ready") })
	qa.must("stop", nil, nil)
	saveSnapshot(qa, snap, 30*time.Second)
	// Saved paused, it is in QEMU's postmigrate state until cont.
	if s := qa.runState(); s != "postmigrate" {
		t.Errorf("query-status after saving a paused VM = %q; want postmigrate", s)
	}
	qa.must("cont", nil, nil)
	qa.waitEvent("RESUME", 1, 10*time.Second)
	if s := qa.runState(); s != "running" {
		t.Errorf("query-status after cont = %q; want running", s)
	}
	qa.must("quit", nil, nil)
	a.wait(t)

	b := startQMPVM(t, append([]string{"-incoming", "file:" + snap}, devs...)...)
	qb := connectQMP(t, b.sock)
	if s := qb.runState(); s != "paused" {
		t.Errorf("restored VM (saved paused) is %q; want paused", s)
	}
	time.Sleep(500 * time.Millisecond)
	if strings.Contains(b.out.String(), "looped") {
		t.Errorf("the guest ran while restored paused: %q", b.out.String())
	}
	qb.must("cont", nil, nil)
	if st := b.wait(t); st != 7 || !strings.Contains(b.out.String(), "looped") {
		t.Errorf("after cont: status %d, output %q; want 7 and the loop's end", st, b.out.String())
	}
}

// timedRun is a vmm whose stdout lines are timestamped as they come.
type timedRun struct {
	cmd   *exec.Cmd
	start time.Time
	mu    sync.Mutex
	lines []timedLine // guarded by mu
	errb  syncBuffer
	done  chan struct{}
}

type timedLine struct {
	at   time.Duration // since start
	text string
}

func startTimed(t *testing.T, args ...string) *timedRun {
	t.Helper()
	r := &timedRun{done: make(chan struct{})}
	r.cmd = exec.Command(vmmBinary(t), append([]string{"run"}, args...)...)
	r.cmd.Stderr = &r.errb
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := timedLine{time.Since(r.start), sc.Text()}
			r.mu.Lock()
			r.lines = append(r.lines, l)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	return r
}

// first returns when the first line containing s came, or -1.
func (r *timedRun) first(s string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l.text, s) {
			return l.at
		}
	}
	return -1
}

func (r *timedRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, l := range r.lines {
		fmt.Fprintf(&b, "%8.3fs %s\n", l.at.Seconds(), l.text)
	}
	return b.String()
}

// wait waits for vmm to end (and its output to be read) and returns its
// exit status.
func (r *timedRun) wait(t *testing.T) int {
	t.Helper()
	ended := make(chan error, 1)
	go func() { <-r.done; ended <- r.cmd.Wait() }()
	select {
	case <-ended:
	case <-time.After(3 * time.Minute):
		r.cmd.Process.Kill()
		<-ended
		t.Fatalf("vmm did not end\nstdout:\n%s\nstderr:\n%s", r.output(), r.errb.String())
	}
	return r.cmd.ProcessState.ExitCode()
}

// TestSnapshotLinux: the Linux test kernel's real virtio_console driver
// across a snapshot. Its init writes 4 MiB to org.vmm.out (waiting for
// the host's ack) and reads 64 KiB from org.vmm.in. The host reads
// 512 KiB of out and stops (the guest's write blocks, its data held),
// and sends all but the last byte to in. migrate; that vmm is killed; a
// new one restores with in's last byte in a file (input-path) and a new
// socket for out. The guest's read job finishes from the file as soon as the guest
// runs (the restore-time measurement: from process start to that line),
// its heartbeat lines go on (timers work), the new out reader gets the
// stream from the exact next byte and acks, and the init reports
// result ok. A cold boot to the same line is timed for comparison.
func TestSnapshotLinux(t *testing.T) {
	needKVM(t)
	vmlinux, initrd := linuxKernel(t)
	const outSize, inSize, firstRead, firstSent = 2 << 20, 64 << 10, 512 << 10, 64<<10 - 1
	jobs := fmt.Sprintf("vs=org.vmm.out:w:%d,org.vmm.in:r:%d", outSize, inSize)
	ports := func(dir string, inChardev string) []string {
		return []string{"-m", "256M", "-device", "virtio-serial-device,max_ports=4",
			"-chardev", "socket,id=out,path=" + filepath.Join(dir, "out.sock") + ",server=on,wait=off",
			"-device", "virtserialport,chardev=out,name=org.vmm.out",
			"-chardev", inChardev, "-device", "virtserialport,chardev=in,name=org.vmm.in"}
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	snap := filepath.Join(t.TempDir(), "linux.snap")
	inSock := filepath.Join(dirA, "in.sock")
	a := startQMPVM(t, append([]string{"-kernel", vmlinux, "-initrd", initrd, "-append", linuxCmdline + " vmm.cmd=" + jobs},
		ports(dirA, "socket,id=in,path="+inSock+",server=on,wait=off")...)...)
	qa := connectQMP(t, a.sock)
	out, in := startExchange(t, qa, filepath.Join(dirA, "out.sock"), inSock,
		firstRead, firstSent, "org.vmm.in", "org.vmm.out", 60*time.Second)
	defer out.Close()
	defer in.Close()
	// The guest reads slowly here (its kernel code is emulated): give it
	// time to take what it was given, so that after the restore its read
	// job waits only for the last byte.
	time.Sleep(3 * time.Second)
	saveSnapshot(qa, snap, 60*time.Second)
	a.cmd.Process.Kill()
	a.cmd.Wait()
	oldGot := firstRead + drainTo(t, out, firstRead)
	if !strings.Contains(a.out.String(), "vmm-init: ready") {
		t.Fatalf("the first VM never said ready:\n%s\n%s", a.out.String(), a.errb.String())
	}

	rest := filepath.Join(dirB, "in.bin")
	if err := os.WriteFile(rest, pattern(firstSent, inSize-firstSent), 0o644); err != nil {
		t.Fatal(err)
	}
	inFile := "file,id=in,path=/dev/null,input-path=" + rest
	b := startTimed(t, append([]string{"-incoming", "file:" + snap}, ports(dirB, inFile)...)...)
	out2 := dial(t, filepath.Join(dirB, "out.sock"))
	defer out2.Close()
	// Let the guest run a while before taking its output: its
	// heartbeat shows the timers work after the restore.
	time.Sleep(1500 * time.Millisecond)
	if err := receive(out2, oldGot, outSize-oldGot); err != nil {
		t.Fatalf("new out reader: %v\n%s", err, b.output())
	}
	if _, err := out2.Write([]byte{ackByte}); err != nil {
		t.Fatal(err)
	}
	if st := b.wait(t); st != 0 {
		t.Fatalf("restored Linux: exit status %d\nstdout:\n%s\nstderr:\n%s", st, b.output(), b.errb.String())
	}
	inDone := fmt.Sprintf("vmm-init: vs org.vmm.in:r:%d done", inSize)
	for _, want := range []string{inDone, fmt.Sprintf("vmm-init: vs org.vmm.out:w:%d done", outSize), "vmm-init: result ok"} {
		if b.first(want) < 0 {
			t.Errorf("restored Linux did not print %q:\n%s", want, b.output())
		}
	}
	beats := 0
	for _, l := range strings.Split(b.output(), "\n") {
		if strings.Contains(l, "vmm-init: heartbeat") {
			beats++
		}
	}
	if beats < 2 {
		t.Errorf("%d heartbeat lines after the restore in 1.5 s; want at least 2 (timers)\n%s", beats, b.output())
	}
	restoreTime := b.first(inDone)

	// A cold boot to the same line, for comparison.
	all := filepath.Join(dirB, "in-all.bin")
	if err := os.WriteFile(all, pattern(0, inSize), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startTimed(t, append([]string{"-kernel", vmlinux, "-initrd", initrd, "-append", linuxCmdline + " vmm.cmd=vs=org.vmm.in:r:" + fmt.Sprint(inSize)},
		ports(t.TempDir(), "file,id=in,path=/dev/null,input-path="+all)...)...)
	if st := c.wait(t); st != 0 || c.first(inDone) < 0 {
		t.Fatalf("cold boot: status %d\n%s\n%s", st, c.output(), c.errb.String())
	}
	coldTime := c.first(inDone)
	t.Logf("restored output:\n%s", b.output())
	t.Logf("Linux test kernel, 256 MiB: restore to the guest's first line after it %v (first output at %v), cold boot to the same line %v (%.0fx)",
		restoreTime.Round(time.Millisecond), b.lines[0].at.Round(time.Millisecond), coldTime.Round(time.Millisecond), coldTime.Seconds()/restoreTime.Seconds())
}

// TestSnapshotConsoleRing: console output the host had not taken yet
// (consoles are never held in the guest's queue: it waits in vmm's
// bounded ring) is in the snapshot. The test guest writes 768 KiB to a
// virtconsole (limit=1M) whose host peer reads nothing: its socket takes
// some, the ring the rest. After migrate, the old peer reads what its
// socket took; the restored VM gives a new peer the ring's contents:
// the stream continues from the exact next byte.
func TestSnapshotConsoleRing(t *testing.T) {
	needKVM(t)
	const size = 768 << 10
	console := func(dir string) []string {
		return []string{"-m", "256M", "-device", "virtio-serial-device,max_ports=2",
			"-chardev", "socket,id=con,path=" + filepath.Join(dir, "con.sock") + ",server=on,wait=off",
			"-device", "virtconsole,chardev=con,name=con,limit=1M"}
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	snap := filepath.Join(t.TempDir(), "vm.snap")
	a := startQMPVM(t, append([]string{"-kernel", guestELF(t), "-append", fmt.Sprintf("vs con:w:%d; serial 1; exit 0", size)}, console(dirA)...)...)
	qa := connectQMP(t, a.sock)
	old := dial(t, filepath.Join(dirA, "con.sock"))
	defer old.Close()
	waitUntil(t, 30*time.Second, "the console job to end", func() bool {
		return strings.Contains(a.out.String(), fmt.Sprintf("vs con:w:%d done", size))
	})
	saveSnapshot(qa, snap, 30*time.Second)
	a.cmd.Process.Kill()
	a.cmd.Wait()
	oldGot := drainTo(t, old, 0)
	if oldGot >= size {
		t.Fatalf("the old peer's socket took all %d bytes: nothing was left in the ring", oldGot)
	}
	b := startQMPVM(t, append([]string{"-incoming", "file:" + snap}, console(dirB)...)...)
	qb := connectQMP(t, b.sock)
	c := dial(t, filepath.Join(dirB, "con.sock"))
	defer c.Close()
	if err := receive(c, oldGot, size-oldGot); err != nil {
		t.Fatalf("new console peer (from offset %d): %v", oldGot, err)
	}
	qb.must("quit", nil, nil)
	b.wait(t)
	t.Logf("the old peer's socket took %d bytes, the restored ring gave the other %d", oldGot, size-oldGot)
}

// TestSnapshotLinuxSMP: the Linux test kernel with two vCPUs, saved
// while its init waits on a port, comes back with both CPUs: the read
// finishes from the restored VM's input and the init reports result ok.
func TestSnapshotLinuxSMP(t *testing.T) {
	needKVM(t)
	vmlinux, initrd := linuxKernel(t)
	dir := t.TempDir()
	snap := filepath.Join(dir, "smp.snap")
	common := []string{"-m", "256M", "-smp", "2", "-cpu", linuxCPU, "-device", "virtio-serial-pci"}
	a := startQMPVM(t, append(append([]string{"-kernel", vmlinux, "-initrd", initrd,
		"-append", linuxCmdline + " vmm.cmd=vs=org.vmm.in:r:4"}, common...),
		"-chardev", "null,id=in", "-device", "virtserialport,chardev=in,name=org.vmm.in")...)
	qa := connectQMP(t, a.sock)
	waitUntil(t, 5*time.Minute, "the init to open its port", func() bool {
		var cs []struct {
			Label        string `json:"label"`
			FrontendOpen bool   `json:"frontend-open"`
		}
		qa.must("query-chardev", nil, &cs)
		for _, c := range cs {
			if c.Label == "in" && c.FrontendOpen {
				return true
			}
		}
		return false
	})
	if !strings.Contains(a.out.String(), "vmm-init: ready cpus=2") {
		t.Fatalf("the first VM has not both CPUs:\n%s", a.out.String())
	}
	saveSnapshot(qa, snap, 60*time.Second)
	qa.must("quit", nil, nil)
	a.wait(t)

	input := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(input, pattern(0, 4), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startTimed(t, append(append([]string{"-incoming", "file:" + snap}, common...),
		"-chardev", "file,id=in,path=/dev/null,input-path="+input, "-device", "virtserialport,chardev=in,name=org.vmm.in")...)
	if st := b.wait(t); st != 0 || b.first("vmm-init: vs org.vmm.in:r:4 done") < 0 || b.first("vmm-init: result ok") < 0 {
		t.Fatalf("restored SMP Linux: status %d\nstdout:\n%s\nstderr:\n%s", st, b.output(), b.errb.String())
	}
	t.Logf("restored -smp 2 Linux read its input %v after process start", b.first("vmm-init: vs org.vmm.in:r:4 done").Round(time.Millisecond))
}

// startExchange connects to a guest's output and input ports, reads
// read bytes of the stream from the first and sends sent to the second,
// and waits until the metrics show the guest took all of them on port
// inName and holds output on outName (its host peer reads no more).
func startExchange(t *testing.T, qa *qmpClient, outSock, inSock string, read, sent int64, inName, outName string, within time.Duration) (out, in net.Conn) {
	t.Helper()
	out = dial(t, outSock)
	in = dial(t, inSock)
	if err := receive(out, 0, read); err != nil {
		t.Fatal(err)
	}
	if err := send(in, 0, sent); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, within, "the guest to take its input and hold output", func() bool {
		var stats []struct {
			Name      string `json:"name"`
			BytesIn   int64  `json:"bytes-to-guest"`
			BytesHeld int64  `json:"bytes-held"`
		}
		qa.must("__org.vmm_query-port-stats", nil, &stats)
		ok := 0
		for _, s := range stats {
			if s.Name == inName && s.BytesIn == sent || s.Name == outName && s.BytesHeld > 0 {
				ok++
			}
		}
		return ok == 2
	})
	return out, in
}
