package tests

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestStockPanic: Debian's cloud kernel panics (sysrq c) with its own
// pvpanic-mmio driver bound to vmm's pvpanic port through the DSDT's
// QEMU0001, and vmm ends with status 1 and one line saying the guest
// panicked, instead of a hung guest or a status a CI script would take
// for success.
func TestStockPanic(t *testing.T) {
	if !runsHere(t) {
		return
	}
	bz, _ := stockKernel(t, "cloud")
	g := shellGuest{Kernel: bz, Initrd: stockShell(t, "cloud"), Mem: "512M", Boot: 5 * time.Minute, Step: 2 * time.Minute}
	vm := exec.Command(vmmBinary(t), g.vmmArgs(`console=ttyS0 quiet vmm.run="echo c >/proc/sysrq-trigger"`)...)
	p := startVM(t, vm)
	waitConsole(t, p, "vmm-shell: ready", g.boot())
	select {
	case <-p.done:
	case <-time.After(g.step()):
		t.Fatalf("vmm still running %v after the ready line: the panic was not reported\n%s", g.step(), &p.con)
	}
	out := p.con.String()
	for _, want := range []string{"vmm-shell: module pvpanic-mmio loaded", "Kernel panic - not syncing",
		"vmm: the guest panicked (pvpanic); exit status 1 (-action panic=exit-failure)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if p.status() != 1 {
		t.Errorf("vmm exit status = %d (%v); want 1 (a guest panic)", p.status(), p.err)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
