package tests

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestGuestCommands boots the test guest under vmm once per case and
// checks what it printed and the exit status it chose.
func TestGuestCommands(t *testing.T) {
	needKVM(t)
	guest := guestELF(t)
	tests := []struct {
		name   string
		args   []string
		want   []string // lines that must appear, in order
		status int
	}{
		{"echo and exit status", []string{"-append", "echo hi there; exit 3"}, []string{"guest: hello", "hi there"}, 3},
		{"done without exit", []string{"-append", "echo one"}, []string{"one", "guest: done"}, 0},
		{"unassigned pio and mmio read all ones", []string{"-append", "probe"}, []string{"guest: probe mmio=0xffffffff pio=0xff"}, 0},
		{"lapic timer interrupts", []string{"-append", "timer; exit 0"}, []string{"guest: timer ok 10 interrupts"}, 0},
		{"pit interrupts through the ioapic", []string{"-append", "timer pit; exit 0"}, []string{"guest: timer pit ok 10 interrupts"}, 0},
		{"unknown command", []string{"-append", "frobnicate"}, []string{`guest: unknown command "frobnicate"`}, 0xef},
		{"memory above 4 GiB", []string{"-m", "5G", "-append", "memmap"}, []string{"guest: memmap 0x0000000100000000-0x000000017fffffff type 1"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runVMM(t, append([]string{"-kernel", guest}, tt.args...)...)
			checkLines(t, r.stdout, tt.want)
			if r.status != tt.status {
				t.Errorf("exit status = %d; want %d\nstdout:\n%s\nstderr:\n%s", r.status, tt.status, r.stdout, r.stderr)
			}
		})
	}
}

// TestGuestSMP: with -smp N every vCPU reports in through the MP table.
func TestGuestSMP(t *testing.T) {
	needKVM(t)
	guest := guestELF(t)
	for _, n := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("smp%d", n), func(t *testing.T) {
			r := runVMM(t, "-kernel", guest, "-smp", fmt.Sprint(n), "-append", "smp; exit 0")
			if r.status != 0 {
				t.Fatalf("exit status = %d; want 0\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
			}
			checkLines(t, r.stdout, []string{fmt.Sprintf("guest: smp %d cpus online", n)})
			online := regexp.MustCompile(`guest: cpu (\d+) online`).FindAllStringSubmatch(r.stdout, -1)
			seen := map[string]bool{}
			for _, m := range online {
				seen[m[1]] = true
			}
			if len(seen) != n-1 {
				t.Errorf("%d distinct APs reported in; want %d\nstdout:\n%s", len(seen), n-1, r.stdout)
			}
		})
	}
}

// TestGuestFatalExit: an instruction KVM cannot run ends the VM with a
// non-zero status and a message naming the exit, RIP and the bytes.
func TestGuestFatalExit(t *testing.T) {
	needKVM(t)
	r := runVMM(t, "-kernel", guestELF(t), "-append", "unemulated")
	if r.status == 0 {
		// Hardware virtualization runs int3 at CPL0; the guest then
		// faults its way to a triple fault, which is a clean reset.
		t.Skipf("this host runs CPL0 natively (int3 did not stop the VM): %s", r.stdout)
	}
	re := regexp.MustCompile(`vmm: vCPU 0: KVM_EXIT_\w+.* at rip 0x[0-9a-f]+ .*instruction bytes cc`)
	if !re.MatchString(r.stderr) {
		t.Errorf("stderr = %q; want a line matching %s", r.stderr, re)
	}
}

// checkLines requires each wanted line to appear, in order.
func checkLines(t *testing.T, out string, want []string) {
	t.Helper()
	checkLinesIn(t, "output", out, want)
}

// TestGuestPowerOff: the guest writes SLP_TYP=S5|SLP_EN into the FADT's
// sleep control register (what Linux's ACPI poweroff does): the VM ends
// with status 0. With -machine acpi=off there is no such register.
func TestGuestPowerOff(t *testing.T) {
	needKVM(t)
	r := runVMM(t, "-kernel", guestELF(t), "-append", "poweroff; exit 9")
	if r.status != 0 || strings.Contains(r.stdout, "still running") {
		t.Errorf("poweroff: status %d, stdout %q; want 0 and the VM gone", r.status, r.stdout)
	}
	r = runVMM(t, "-machine", "acpi=off", "-kernel", guestELF(t), "-append", "poweroff; exit 9")
	if r.status != 9 {
		t.Errorf("poweroff with acpi=off: status %d; want 9 (no sleep register, the guest runs on)", r.status)
	}
}

// TestGuestReset: a reset through the i8042 or a triple fault ends the
// VM with status 0, as QEMU's -no-reboot does.
func TestGuestReset(t *testing.T) {
	needKVM(t)
	for _, c := range []string{"reset", "triplefault"} {
		t.Run(c, func(t *testing.T) {
			r := runVMM(t, "-kernel", guestELF(t), "-append", c+"; exit 9")
			if r.status != 0 || strings.Contains(r.stdout, "still running") {
				t.Errorf("%s: exit status %d, stdout %q; want 0 and the VM gone\nstderr:\n%s", c, r.status, r.stdout, r.stderr)
			}
		})
	}
}
