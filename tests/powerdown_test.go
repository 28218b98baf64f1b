package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStockPowerdown: QMP system_powerdown presses the ACPI power button
// of a running Debian cloud kernel with the tests/stock shell userland,
// and the guest goes down in order. vmm's GED (ACPI0013) raises its
// interrupt, the kernel's _EVT call reads the event register and
// notifies \_SB.PWRB, the button driver reports KEY_POWER, busybox acpid
// runs /etc/acpi/power, which stops qemu-ga and powers off through ACPI
// S5. The client sees the reply, POWERDOWN, then SHUTDOWN {guest: true,
// reason: guest-shutdown}, and vmm exits with status 0.
func TestStockPowerdown(t *testing.T) {
	if !runsHere(t) {
		return
	}
	bz, _ := stockKernel(t, "cloud")
	g := shellGuest{Kernel: bz, Initrd: stockShell(t, "cloud"), Cmdline: "console=ttyS0 quiet",
		Mem: "512M", Transport: "virtio-serial-pci", Boot: 5 * time.Minute, Step: 2 * time.Minute}
	dir := t.TempDir()
	sock := filepath.Join(dir, "qmp.sock")
	vm := vmmAgentCmd(t, g, filepath.Join(dir, "qga.sock"))
	vm.Args = append(vm.Args, "-qmp", "unix:"+sock+",server=on,wait=off")
	p := startVM(t, vm)
	ready := waitConsole(t, p, "vmm-shell: ready", g.boot())
	t.Logf("boot to ready line %v", ready.Round(time.Millisecond))
	for _, want := range []string{"vmm-shell: module button loaded", "vmm-shell: module evdev loaded",
		"vmm-shell: qemu-ga started", "vmm-shell: acpid started"} {
		if !strings.Contains(p.con.String(), want) {
			t.Fatalf("console before the ready line lacks %q\n%s", want, &p.con)
		}
	}

	c := connectQMP(t, sock)
	pressed := time.Now()
	c.must("system_powerdown", nil, nil)
	c.waitEvent("POWERDOWN", 1, 10*time.Second)
	sd := c.waitEvent("SHUTDOWN", 1, g.step())
	t.Logf("system_powerdown to SHUTDOWN: %v", time.Since(pressed).Round(time.Millisecond))
	if sd.Data["guest"] != true || sd.Data["reason"] != "guest-shutdown" {
		t.Errorf("SHUTDOWN data = %v; want guest true, reason guest-shutdown", sd.Data)
	}
	var order []string
	for _, e := range c.eventList() {
		order = append(order, e.Event)
	}
	if got := strings.Join(order, " "); got != "POWERDOWN SHUTDOWN" {
		t.Errorf("events = %s; want POWERDOWN SHUTDOWN", got)
	}
	select {
	case <-p.done:
	case <-time.After(g.step()):
		t.Fatalf("vmm still running %v after SHUTDOWN\n%s", g.step(), &p.con)
	}
	if p.status() != 0 {
		t.Errorf("vmm exit status = %d (%v); want 0 (the guest powered off)\n%s", p.status(), p.err, &p.con)
	}
	// The way down: acpid's handler stopped qemu-ga before the power-off.
	// (Any of its lines may follow the shell's prompt, or the prompt's
	// cursor query, on the console: seen in CI.)
	out := strings.ReplaceAll(p.con.String(), "\r\n", "\n")
	rest := out
	for _, want := range []string{"vmm-shell: power button: shutting down\n", "vmm-shell: qemu-ga stopped\n",
		"vmm-shell: power button: powering off\n", "vmm-shell: poweroff\n"} {
		i := strings.Index(rest, want)
		if i < 0 {
			t.Fatalf("console lacks %q (in order)\n%s", want, out)
		}
		rest = rest[i+len(want):]
	}
}

// TestQMPPowerdownIgnored: system_powerdown with a guest that has no
// button driver (the test guest, with ACPI tables and with acpi=off)
// replies, emits POWERDOWN and nothing else: the VM keeps running until
// quit. query-commands lists the command.
func TestQMPPowerdownIgnored(t *testing.T) {
	needKVM(t)
	for _, tt := range []struct {
		name  string // short: the QMP socket's path holds it
		extra []string
	}{{"acpi", nil}, {"noacpi", []string{"-machine", "acpi=off"}}} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-kernel", guestELF(t), "-serial", "null", "-append", "serial 4"}, tt.extra...)
			v := startQMPVM(t, args...)
			c := connectQMP(t, v.sock)
			var cmds []struct{ Name string }
			c.must("query-commands", nil, &cmds)
			found := false
			for _, x := range cmds {
				found = found || x.Name == "system_powerdown"
			}
			if !found {
				t.Errorf("query-commands lacks system_powerdown")
			}
			c.must("system_powerdown", nil, nil)
			c.waitEvent("POWERDOWN", 1, 10*time.Second)
			var st struct {
				Running bool
				Status  string
			}
			c.must("query-status", nil, &st)
			if !st.Running || st.Status != "running" {
				t.Errorf("query-status after system_powerdown = %+v; want running", st)
			}
			c.must("quit", nil, nil)
			c.waitEvent("SHUTDOWN", 1, 10*time.Second)
			if status := v.wait(t); status != 0 {
				t.Errorf("vmm exit status after quit = %d; want 0\nstderr:\n%s", status, v.errb.String())
			}
			var order []string
			for _, e := range c.eventList() {
				order = append(order, e.Event)
			}
			if got := strings.Join(order, " "); got != "POWERDOWN SHUTDOWN" {
				t.Errorf("events = %s; want POWERDOWN SHUTDOWN (the guest ignored the button)", got)
			}
		})
	}
}
