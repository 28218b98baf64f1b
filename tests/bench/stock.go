package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vmm/tests/nested"
)

// The stock-kernel rows: Debian's cloud kernel booted by vmm and by QEMU
// q35 in the same outer machine of the nested rig (our hosts' KVM
// emulates guest kernel mode), interleaved. TCG time: only the ratio
// means anything.

const (
	stockCmdline = "console=ttyS0 quiet vmm.cmd=marker vmm.poweroff=1"
	tableBegin   = "--- stock table ---"
	tableEnd     = "--- end stock table ---"
)

// stockTable times the stock kernel in dir under vmm and QEMU here (in
// the rig) and returns the table between tableBegin and tableEnd.
func stockTable(vmm, dir string, runs int) string {
	bz, initrd := filepath.Join(dir, "bzImage"), filepath.Join(dir, "initrd.cpio")
	peers := []peer{
		{"vmm", func(k, c string) []string {
			return []string{vmm, "run", "-kernel", k, "-initrd", initrd, "-m", "512M", "-smp", "2", "-append", c}
		}},
		{"qemu", func(k, c string) []string {
			return []string{"qemu-system-x86_64", "-enable-kvm", "-M", "q35", "-cpu", "host", "-m", "512M", "-smp", "2",
				"-nodefaults", "-display", "none", "-no-user-config", "-serial", "stdio", "-no-reboot",
				"-kernel", k, "-initrd", initrd, "-append", c}
		}},
	}
	res := measure(peers, bz, stockCmdline, "vmm-init: ready", runs)
	title := fmt.Sprintf("Debian stock kernel %s, -smp 2, ACPI, QEMU q35, nested rig (TCG time), %d runs each, median (min–max)",
		kernelName(dir), runs)
	return tableBegin + "\n" + render(title, "init's first line", "512 MiB", res) + tableEnd + "\n"
}

// kernelName is the package the kernel came from (make kernels keeps it).
func kernelName(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "PACKAGE"))
	if err != nil {
		return filepath.Base(dir)
	}
	return strings.TrimSuffix(strings.TrimSpace(string(b)), ".deb")
}

// rigTries is how many outer machines the stock rows may take: the
// outer machine (L1's KVM on QEMU's emulated SVM) at times goes silent
// or panics on its own, as the rig tests' retries record.
const rigTries = 3

// stockInRig runs this program with -in-rig in the nested rig, in a new
// outer machine after a failed one (rigTries in all), and returns the
// table it printed.
func stockInRig(build, vmm, dir string, runs int) (string, error) {
	var err error
	for try := 1; try <= rigTries; try++ {
		var t string
		if t, err = stockInRigOnce(build, vmm, dir, runs); err == nil {
			return t, nil
		}
		fmt.Fprintf(os.Stderr, "bench: nested rig, try %d of %d: %v\n", try, rigTries, err)
	}
	return "", err
}

func stockInRigOnce(build, vmm, dir string, runs int) (string, error) {
	r, err := nested.Prepare(build)
	if err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	var console strings.Builder
	fmt.Fprintf(os.Stderr, "bench: booting the nested rig for the stock-kernel rows (%d boots per peer, a few minutes)\n", runs)
	status, err := r.Run(context.Background(), nested.Command{
		Args:    []string{self, "-in-rig", "-vmm", abs(vmm), "-stock", abs(dir), "-stock-runs", fmt.Sprint(runs)},
		Timeout: time.Duration(runs)*4*time.Minute + 5*time.Minute,
		Console: &console,
	})
	out := console.String()
	if err != nil {
		return "", err
	}
	i, j := strings.Index(out, tableBegin), strings.Index(out, tableEnd)
	if status != 0 || i < 0 || j < i {
		return "", fmt.Errorf("status %d, no table in its output:\n%s", status, out)
	}
	return out[i+len(tableBegin)+1 : j], nil
}
