package tests

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLinuxVirtioSerial runs the real Linux virtio_console driver
// against vmm's virtio-serial device over virtio-mmio, in one boot:
// every port visible by name, the console port as hvc, 8 MiB each way
// with every byte checked, and a port whose host never reads blocking
// only its own writer while the other transfers and the heartbeat go on.
func TestLinuxVirtioSerial(t *testing.T) {
	needKVM(t)
	// The same driver over both transports: virtio-mmio, and virtio-pci
	// with MSI-X behind the PCI host bridge.
	for _, transport := range []string{"virtio-serial-device", "virtio-serial-pci"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			linuxVirtioSerial(t, transport)
		})
	}
}

func linuxVirtioSerial(t *testing.T, transport string) {
	vmlinux, initrd := linuxKernel(t)
	dir := t.TempDir()
	sock := func(n string) string { return filepath.Join(dir, n+".sock") }
	const size = 8 << 20
	jobs := fmt.Sprintf("org.vmm.out:w:%d,org.vmm.in:r:%d,org.vmm.stuck:s:64M", size, size)
	args := []string{"run", "-kernel", vmlinux, "-initrd", initrd, "-m", "256M",
		"-append", linuxCmdline + " vmm.cmd=vs=" + jobs,
		"-device", transport + ",max_ports=8",
		"-chardev", "null,id=con", "-device", "virtconsole,chardev=con,name=org.vmm.console",
	}
	for _, p := range []string{"out", "in", "stuck"} {
		args = append(args, "-chardev", "socket,id="+p+",path="+sock(p)+",server=on,wait=off",
			"-device", "virtserialport,chardev="+p+",name=org.vmm."+p)
	}
	done := startRun(t, 8*time.Minute, vmmBinary(t), args...) // ~2 min here

	// Host peers: one reads and acks, one writes, one connects and never reads.
	stuck := dial(t, sock("stuck"))
	defer stuck.Close()
	waitPeers := linuxPeers(t, sock, size)
	r := vmEnded(t, done)
	waitPeers()
	if r.status != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	checkLines(t, r.stdout, []string{
		"vmm-init: port vport0p0 name=org.vmm.console",
		"vmm-init: port vport0p1 name=org.vmm.out",
		"vmm-init: port vport0p2 name=org.vmm.in",
		"vmm-init: port vport0p3 name=org.vmm.stuck",
		"vmm-init: ports n=4",
		"vmm-init: console hvc0",
	})
	for _, j := range []string{"org.vmm.out:w", "org.vmm.in:r"} {
		if !strings.Contains(r.stdout, "vmm-init: vs "+j+fmt.Sprintf(":%d done", size)) {
			t.Errorf("job %s did not finish\n%s", j, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "stuck:s:") {
		t.Errorf("the stalled writer finished though its host never read")
	}
	checkLines(t, r.stdout, []string{"vmm-init: result ok"})
	checkHeartbeat(t, r.stdout, 3*time.Second)
}

// checkHeartbeat requires heartbeat lines no further apart than gap.
func checkHeartbeat(t *testing.T, out string, gap time.Duration) {
	t.Helper()
	beats := regexp.MustCompile(`heartbeat (\d+)`).FindAllStringSubmatch(out, -1)
	if len(beats) < 2 {
		t.Errorf("%d heartbeat lines; want a steady heartbeat during the transfers\n%s", len(beats), out)
		return
	}
	prev := int64(0)
	for _, b := range beats {
		ms, _ := strconv.ParseInt(b[1], 10, 64)
		if d := time.Duration(ms-prev) * time.Millisecond; d > gap {
			t.Errorf("heartbeat gap of %v at %d ms; want at most %v (the guest stalled)", d, ms, gap)
		}
		prev = ms
	}
	t.Logf("%d heartbeats, last at %s ms", len(beats), beats[len(beats)-1][1])
}
