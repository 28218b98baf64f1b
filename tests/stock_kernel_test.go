package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// cpl0Emulated measures, in a probe VM, how much slower a loop runs at
// CPL0 than at CPL3. Under hardware virtualization both run natively
// (ratio ~1); a host that emulates kernel mode is hundreds of times
// slower at CPL0, and a stock distro kernel will not boot there in
// useful time.
func cpl0Emulated(t *testing.T) (bool, float64) {
	t.Helper()
	r := runVMM(t, "-kernel", guestELF(t), "-append", "loop 100000; cpl0probe 100000")
	cycles := func(name string) float64 {
		m := regexp.MustCompile(`guest: ` + name + ` 100000 (?:done )?cycles=(\d+)`).FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("probe VM printed no %s line:\n%s\n%s", name, r.stdout, r.stderr)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	ratio := cycles("cpl0probe") / cycles("loop")
	return ratio > 20, ratio
}

// TestStockDebianKernel boots Debian's own kernel (the bzImage of
// linux-image-amd64) with the Go init where the host runs CPL0 natively;
// elsewhere it skips and says why. Loading it is tested in boot/ on
// every host.
func TestStockDebianKernel(t *testing.T) {
	needKVM(t)
	if emulated, ratio := cpl0Emulated(t); emulated {
		t.Skipf("this host's KVM emulates guest CPL0 (a CPL0 loop runs %.0f× slower than at CPL3): a stock kernel does not boot here in useful time", ratio)
	}
	dir := os.Getenv("VMM_DEBIAN_KERNEL_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "build/debian")
	}
	bz := filepath.Join(dir, "bzImage")
	if _, err := os.Stat(bz); err != nil {
		t.Fatalf("Debian kernel missing (%v): run `make kernels`", err)
	}
	_, initrd := linuxKernel(t)
	r := run(t, 3*time.Minute, vmmBinary(t), "run", "-kernel", bz, "-initrd", initrd, "-m", "512M", "-smp", "2",
		"-append", "console=ttyS0 quiet vmm.cmd=exit=3")
	checkLinux(t, r, "vmm-init: ready cpus=2", 3)
}
