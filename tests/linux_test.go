package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// linuxCmdline is what the test kernel needs on hosts whose KVM
// emulates kernel mode (see tests/guest/linux/README.md and
// ../shared/TEST-KERNEL.md for why each word is there).
const linuxCmdline = "console=ttyS0 quiet noxsave clearcpuid=151,308,297,580,141 reboot=t rodata=off retain_initrd"

// linuxCPU clears the KVM PV-IPI and PV-sched-yield bits, which a
// second CPU of the test kernel would otherwise hang on (vmcall).
const linuxCPU = "host,kvm-pv-ipi=off,kvm-pv-sched-yield=off"

// linuxKernel returns the test kernel and its initrd; make test builds
// them first (make guest-linux).
func linuxKernel(t *testing.T) (vmlinux, initrd string) {
	t.Helper()
	dir := os.Getenv("VMM_LINUX_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "build/linux")
	}
	vmlinux, initrd = filepath.Join(dir, "vmlinux"), filepath.Join(dir, "initrd.cpio")
	for _, f := range []string{vmlinux, initrd} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("Linux test kernel missing (%v): run `make guest-linux` (make test does)", err)
		}
	}
	return vmlinux, initrd
}

// TestLinuxBoot boots the Linux test kernel with the Go init under vmm
// and under QEMU, with one and two vCPUs: the marker must name every
// CPU online, and the init's exit status must come back. Boots take
// seconds here, so the four run in parallel.
func TestLinuxBoot(t *testing.T) {
	needKVM(t)
	vmlinux, initrd := linuxKernel(t)
	vmm := vmmBinary(t)
	qemu := qemuBinary(t)
	for _, smp := range []int{1, 2} {
		want := fmt.Sprintf("vmm-init: ready cpus=%d", smp)
		cmdline := linuxCmdline + " vmm.cmd=exit=3"
		t.Run(fmt.Sprintf("vmm/smp%d", smp), func(t *testing.T) {
			t.Parallel()
			r := run(t, 3*time.Minute, vmm, "run", "-kernel", vmlinux, "-initrd", initrd, "-m", "128M",
				"-smp", fmt.Sprint(smp), "-cpu", linuxCPU, "-append", cmdline)
			checkLinux(t, r, want, 3)
		})
		t.Run(fmt.Sprintf("qemu/smp%d", smp), func(t *testing.T) {
			t.Parallel()
			args := append(qemuArgs(fmt.Sprint(smp), vmlinux, cmdline), "-initrd", initrd)
			r := run(t, 3*time.Minute, qemu, args...)
			checkLinux(t, r, want, 2*3+1)
		})
	}
}

func checkLinux(t *testing.T, r result, marker string, status int) {
	t.Helper()
	if !strings.Contains(r.stdout, marker) || !strings.Contains(r.stdout, "vmm-init: result ok") {
		t.Errorf("output lacks %q and the ok result\nstdout:\n%s\nstderr:\n%s", marker, r.stdout, r.stderr)
	}
	if r.status != status {
		t.Errorf("exit status = %d; want %d\nstdout:\n%s\nstderr:\n%s", r.status, status, r.stdout, r.stderr)
	}
	t.Logf("booted to exit in %v", r.elapsed.Round(time.Millisecond))
}
