package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cloudModules are the modules the virtio-serial tests need from
// Debian's cloud kernel, in load order (each after what it depends on).
// Optional ones are left out where the kernel ships no such module.
var cloudModules = []struct {
	name     string
	optional bool
}{
	{"virtio_ring", false},
	{"virtio", false},
	{"virtio_pci_modern_dev", false},
	{"virtio_pci_legacy_dev", true},
	{"virtio_pci", false},
	{"virtio_mmio", false},
	{"virtio_console", false},
}

// TestStockCloudKernel boots Debian's stock cloud kernel (the bzImage of
// linux-image-cloud-amd64, fetched by `make kernels` into
// build/debian-cloud) with two vCPUs and an initramfs holding the Go init
// and the virtio modules, which the init loads itself. Once per
// virtio-serial transport (vmm has one virtio-serial device per VM, so
// two boots): both CPUs online, every port listed by name, 1 MiB each way
// checked byte by byte against host peers, and the VM ended by the
// guest's own poweroff (ACPI S5, status 0). Where the host's KVM emulates
// CPL0 it skips and says why.
func TestStockCloudKernel(t *testing.T) {
	needKVM(t)
	if emulated, ratio := cpl0Emulated(t); emulated {
		t.Skipf("this host's KVM emulates guest CPL0 (a CPL0 loop runs %.0f× slower than at CPL3): a stock kernel does not boot here in useful time", ratio)
	}
	dir := os.Getenv("VMM_DEBIAN_CLOUD_KERNEL_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "build/debian-cloud")
	}
	bz := filepath.Join(dir, "bzImage")
	if _, err := os.Stat(bz); err != nil {
		t.Fatalf("Debian cloud kernel missing (%v): run `make kernels`", err)
	}
	modDir := filepath.Join(dir, "modules")
	builtin, _ := os.ReadFile(filepath.Join(dir, "BUILTIN"))
	var mods []string
	for _, m := range cloudModules {
		if hasModule(modDir, m.name) {
			mods = append(mods, m.name)
			continue
		}
		if m.optional || strings.Contains(string(builtin), "/"+m.name+".ko") {
			continue // not shipped, or built into the kernel
		}
		t.Fatalf("module %s is not in %s (nor built in): run `make kernels`", m.name, modDir)
	}
	list := strings.Join(mods, ",")

	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	mk := exec.Command("go", "run", "./tests/guest/linux/mkinitrd", "-o", initrd, "-modules", modDir, "-module-list", list)
	mk.Dir = repoRoot()
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("mkinitrd: %v\n%s", err, out)
	}

	for _, transport := range []string{"virtio-serial-pci", "virtio-serial-device"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			stockCloudSerial(t, bz, initrd, list, transport)
		})
	}
}

// hasModule reports whether dir holds name.ko, name.ko.xz or name.ko.zst.
func hasModule(dir, name string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst"} {
		if _, err := os.Stat(filepath.Join(dir, name+ext)); err == nil {
			return true
		}
	}
	return false
}

func stockCloudSerial(t *testing.T, bz, initrd, mods, transport string) {
	dir := t.TempDir()
	sock := func(n string) string { return filepath.Join(dir, n+".sock") }
	const size = 1 << 20
	args := []string{"run", "-kernel", bz, "-initrd", initrd, "-m", "512M", "-smp", "2",
		"-append", "console=ttyS0 quiet vmm.modules=" + mods + " vmm.poweroff=1 vmm.cmd=vs=org.vmm.out:w:1M,org.vmm.in:r:1M",
		"-device", transport + ",max_ports=4",
		"-chardev", "null,id=con", "-device", "virtconsole,chardev=con,name=org.vmm.console",
	}
	for _, p := range []string{"out", "in"} {
		args = append(args, "-chardev", "socket,id="+p+",path="+sock(p)+",server=on,wait=off",
			"-device", "virtserialport,chardev="+p+",name=org.vmm."+p)
	}
	done := make(chan result, 1)
	go func() { done <- run(t, 3*time.Minute, vmmBinary(t), args...) }()

	waitPeers := linuxPeers(t, sock, size)
	r := <-done
	waitPeers()
	if r.status != 0 {
		t.Fatalf("exit status %d; want 0 (poweroff)\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	want := []string{"vmm-init: ready cpus=2 online=0-1"}
	for _, m := range strings.Split(mods, ",") {
		want = append(want, "vmm-init: module "+m+" loaded")
	}
	want = append(want,
		"vmm-init: port vport0p0 name=org.vmm.console",
		"vmm-init: port vport0p1 name=org.vmm.out",
		"vmm-init: port vport0p2 name=org.vmm.in",
		"vmm-init: ports n=3",
		"vmm-init: console hvc0",
	)
	checkLines(t, r.stdout, want)
	for _, j := range []string{"org.vmm.out:w", "org.vmm.in:r"} {
		if !strings.Contains(r.stdout, "vmm-init: vs "+j+fmt.Sprintf(":%d done", size)) {
			t.Errorf("job %s did not finish\n%s", j, r.stdout)
		}
	}
	// The guest's own poweroff ended the VM: the init asked for it and the
	// kernel carried it out (not the debug-exit port, not a reboot).
	checkLines(t, r.stdout, []string{"vmm-init: result ok", "vmm-init: poweroff"})
	if !strings.Contains(r.stdout, "reboot: Power down") {
		t.Errorf("the kernel did not print its power-down line\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "vmm-init: poweroff:") || strings.Contains(r.stdout, "rebooting") {
		t.Errorf("poweroff failed and the init fell back\n%s", r.stdout)
	}
	t.Logf("%s: booted, moved 2×1 MiB and powered off in %v", transport, r.elapsed.Round(time.Millisecond))
}
