package tests

import (
	"testing"
	"time"
)

// qemuArgs boots a PVH kernel the way vmm does: microvm without ACPI,
// the debug-exit port at 0xf4, COM1 on stdio. Plain `-cpu host` makes
// QEMU 7.2 abort on this host (it cannot set MSR 0x10a), hence
// -arch-capabilities; the PV-IPI bits are off as the Linux guest needs.
func qemuArgs(smp string, kernel string, cmdline string) []string {
	return []string{"-enable-kvm", "-M", "microvm,acpi=off",
		"-cpu", "host,-arch-capabilities,kvm-pv-ipi=off,kvm-pv-sched-yield=off",
		"-m", "128M", "-smp", smp, "-nodefaults", "-nographic", "-no-user-config",
		"-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
		"-kernel", kernel, "-append", cmdline}
}

// TestGuestUnderQEMU: the same test guest runs unchanged under QEMU,
// whose isa-debug-exit reports status 2v+1.
func TestGuestUnderQEMU(t *testing.T) {
	needKVM(t)
	qemu := qemuBinary(t)
	guest := guestELF(t)
	r := run(t, 2*time.Minute, qemu, qemuArgs("2", guest, "echo hi; smp; timer; probe; exit 3")...)
	checkLines(t, r.stdout, []string{"guest: hello", "hi", "guest: cpu 1 online (apic 1)",
		"guest: smp 2 cpus online", "guest: timer ok 10 interrupts"})
	if r.status != 2*3+1 {
		t.Errorf("QEMU exit status = %d; want 7 (2*3+1)\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
}
