package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"vmm/tests/nested"
)

// stockModules are the virtio modules a stock Debian kernel needs for
// virtio-serial, in load order; `make stock-initrds` packs the same list
// into each stock kernel's initrd.cpio.
const stockModules = "virtio_ring,virtio,virtio_pci_modern_dev,virtio_pci_legacy_dev,virtio_pci,virtio_mmio,virtio_console"

// stockKernel returns the bzImage and initrd of one of Debian's stock
// kernels: "generic" (linux-image-amd64, in build/debian) or "cloud"
// (linux-image-cloud-amd64, in build/debian-cloud), as `make kernels
// stock-initrds` (part of make test) leave them.
func stockKernel(t *testing.T, name string) (bzImage, initrd string) {
	t.Helper()
	env, dir := "VMM_DEBIAN_KERNEL_DIR", "build/debian"
	if name == "cloud" {
		env, dir = "VMM_DEBIAN_CLOUD_KERNEL_DIR", "build/debian-cloud"
	}
	d := os.Getenv(env)
	if d == "" {
		d = filepath.Join(repoRoot(), dir)
	}
	bzImage, initrd = filepath.Join(d, "bzImage"), filepath.Join(d, "initrd.cpio")
	for _, f := range []string{bzImage, initrd} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("Debian %s kernel files missing (%v): run `make kernels stock-initrds`", name, err)
		}
	}
	return bzImage, initrd
}

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

// stockCase is one boot of a stock kernel.
type stockCase struct {
	kernel    string // "cloud" or "generic"
	transport string // -device name: virtio-serial-pci or virtio-serial-device (mmio, found through ACPI)
	smp       int
	consoles  string // the console= words
	end       string // "poweroff" or "reboot": how the init ends a good run
}

// TestStockKernels boots Debian's stock kernels, cloud and generic, as
// users get them (bzImage, ACPI, modules from the initramfs), on a KVM
// that runs guest kernel code natively (in the nested rig on our
// hosts). Each boot: every CPU online, the virtio modules loaded,
// every port listed by name, 1 MiB each way checked byte by byte
// against host peers, the init's lines on the console it was given
// (ttyS0, or hvc0 alone through a virtconsole on a file), no kernel
// warning about XSAVE, the RTC or the i8042, and the VM ended by the
// guest's own poweroff or reboot with status 0.
func TestStockKernels(t *testing.T) {
	if !runsHere(t) {
		return
	}
	for _, c := range []stockCase{
		{"cloud", "virtio-serial-pci", 4, "console=hvc0", "poweroff"},
		{"cloud", "virtio-serial-device", 1, "console=ttyS0", "reboot"},
		{"generic", "virtio-serial-pci", 2, "console=ttyS0 console=hvc0", "poweroff"},
		{"generic", "virtio-serial-device", 4, "console=ttyS0", "reboot"},
	} {
		name := fmt.Sprintf("%s/%s/smp%d/%s", c.kernel, c.transport, c.smp, c.end)
		t.Run(name, func(t *testing.T) { stockBoot(t, c) })
	}
}

// stockBootBound is how long one stock boot may take (they take 20-60 s
// in the rig) before it is looked at and killed; stockBootTries is how
// many boots stockBoot makes of a case whose boots stall that way. The
// rig's budget for TestStockKernels (rigTests) is made from both.
const (
	stockBootBound = 3 * time.Minute
	stockBootTries = 3
)

// stockBoot boots c; in the nested rig, a boot that its outer machine
// stalled by losing an interrupt (lostInterrupt) is booted again, up to
// twice, in the same outer machine: that costs a minute, a new outer
// machine (the rig's own retry) several.
func stockBoot(t *testing.T, c stockCase) {
	inRig := os.Getenv(nested.EnvInside) != ""
	for attempt := 1; stockBootOnce(t, c, inRig && attempt < stockBootTries); attempt++ {
		t.Logf("boot %d stalled on an interrupt the outer machine lost: booting again", attempt)
	}
}

// stockBootOnce boots c and checks it; if mayRetry, a boot stalled on a
// lost interrupt returns true instead of failing the test.
func stockBootOnce(t *testing.T, c stockCase, mayRetry bool) (retry bool) {
	bz, initrd := stockKernel(t, c.kernel)
	dir := t.TempDir()
	sock := func(n string) string { return filepath.Join(dir, n+".sock") }
	conFile := filepath.Join(dir, "console.out")
	const size = 1 << 20
	// VMM_STOCK_VERBOSE=1 keeps the kernel's boot log on the console, to
	// see where a boot that stopped was (its lines may split the init's).
	quiet := " quiet"
	if os.Getenv("VMM_STOCK_VERBOSE") != "" {
		quiet = ""
	}
	args := []string{"run", "-kernel", bz, "-initrd", initrd, "-m", "512M", "-smp", fmt.Sprint(c.smp),
		"-append", c.consoles + quiet + " vmm.modules=" + stockModules + " vmm.klog=1 vmm." + c.end + "=1" +
			" vmm.cmd=vs=org.vmm.out:w:1M,org.vmm.in:r:1M",
		"-device", c.transport + ",max_ports=4",
		"-chardev", "file,id=con,path=" + conFile, "-device", "virtconsole,chardev=con,name=org.vmm.console",
	}
	for _, p := range []string{"out", "in"} {
		args = append(args, "-chardev", "socket,id="+p+",path="+sock(p)+",server=on,wait=off",
			"-device", "virtserialport,chardev="+p+",name=org.vmm."+p)
	}
	// A VM that stops making progress is asked what its vCPUs and COM1
	// are doing before it is killed.
	qmpSock := filepath.Join(dir, "qmp.sock")
	args = append(args, "-qmp", "unix:"+qmpSock+",server=on,wait=off")
	done := make(chan result, 1)
	go func() {
		done <- runNoFatalDiag(stockBootBound, func() string { return vmDiag(qmpSock) },
			func(s string) { t.Logf("vmm past its bound of %v:\n%s", stockBootBound, s); reportLostInterrupt(t, s) }, vmmBinary(t), args...)
	}()
	waitPeers := linuxPeers(t, sock, size)
	r := <-done
	if mayRetry && r.err != nil && lostInterrupt(r.err.Error()) != "" {
		return true // its peers end on the killed VM's sockets
	}
	waitPeers()
	if r.err != nil {
		con, _ := os.ReadFile(conFile)
		t.Fatalf("vmm: %v\nstdout:\n%s\nconsole file:\n%s\nstderr:\n%s", r.err, r.stdout, con, r.stderr)
	}
	con, err := os.ReadFile(conFile)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 0 {
		t.Fatalf("exit status %d; want 0 (%s)\nstdout:\n%s\nconsole file:\n%s\nstderr:\n%s", r.status, c.end, r.stdout, con, r.stderr)
	}
	// The init writes to /dev/console, which is ttyS0 whenever it is
	// named (hvc0 does not exist before virtio_console is loaded); with
	// console=hvc0 alone it keeps its lines until hvc0 is there, and they
	// are all in the virtconsole's file when vmm has ended.
	out, where := r.stdout, "stdout (ttyS0)"
	if !strings.Contains(c.consoles, "ttyS0") {
		out, where = string(con), "the virtconsole's file (hvc0)"
	}
	online := "0"
	if c.smp > 1 {
		online = fmt.Sprintf("0-%d", c.smp-1)
	}
	want := []string{fmt.Sprintf("vmm-init: ready cpus=%d online=%s", c.smp, online)}
	for _, m := range strings.Split(stockModules, ",") {
		want = append(want, "vmm-init: module "+m+" loaded")
	}
	want = append(want,
		"vmm-init: port vport0p0 name=org.vmm.console",
		"vmm-init: port vport0p1 name=org.vmm.out",
		"vmm-init: port vport0p2 name=org.vmm.in",
		"vmm-init: ports n=3",
		"vmm-init: console hvc0",
		"vmm-init: result ok",
		"vmm-init: "+c.end,
	)
	checkLinesIn(t, where, out, want)
	// The two jobs run at once: their lines come in either order.
	for _, job := range []string{"org.vmm.out:w", "org.vmm.in:r"} {
		if !strings.Contains(out, "vmm-init: vs "+job+":1048576 done") {
			t.Errorf("%s lacks the end of job %s", where, job)
		}
	}
	checkKernelWarnings(t, out)
	// The kernel's own last line goes out on ttyS0 by polling; on hvc0
	// it comes after the device's queues are shut down, and may not.
	if c.end == "poweroff" && strings.Contains(c.consoles, "ttyS0") && !strings.Contains(r.stdout, "reboot: Power down") {
		t.Errorf("the kernel did not print its power-down line on ttyS0")
	}
	t.Logf("booted, moved 2×1 MiB and ended by %s in %v (TCG time in the rig)", c.end, r.elapsed.Round(time.Millisecond))
	return false
}

// checkLinesIn is checkLines naming where the lines were looked for.
func checkLinesIn(t *testing.T, where, out string, want []string) {
	t.Helper()
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	i := 0
	for _, l := range lines {
		if i < len(want) && strings.TrimSpace(l) == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("%s lacks %q (in order)\n%s", where, want[i], out)
	}
}

// stockWarnings are kernel warnings vmm once caused in stock kernels.
var stockWarnings = []string{"WARNING", "XSAVE", "rtc_cmos", "i8042"}

// checkKernelWarnings fails on a "vmm-init: klog" line (a kernel log
// line of warning level or worse) naming one of stockWarnings, and
// logs the others.
func checkKernelWarnings(t *testing.T, out string) {
	t.Helper()
	if !strings.Contains(out, "vmm-init: klog n=") {
		t.Errorf("the init printed no kernel warnings summary (vmm.klog=1)")
	}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "vmm-init: klog <") {
			continue
		}
		bad := false
		for _, w := range stockWarnings {
			bad = bad || strings.Contains(l, w)
		}
		if bad {
			t.Errorf("kernel warning: %s", l)
		} else {
			t.Logf("kernel log: %s", l)
		}
	}
}

// stockUserland is Debian's cloud kernel with the tests/stock userland
// (busybox-static, the kernel's virtio modules, Debian's qemu-guest-agent
// and its libraries), as TestStockShell and TestStockAgent boot it.
func stockUserland(t *testing.T) shellGuest {
	bz, _ := stockKernel(t, "cloud")
	return shellGuest{Kernel: bz, Initrd: stockShell(t, "cloud"), Cmdline: "console=ttyS0 quiet",
		Mem: "512M", Transport: "virtio-serial-pci", Extra: []string{"-smp", "2"},
		Boot: 5 * time.Minute, Step: 2 * time.Minute}
}

// TestStockShell boots the stock userland (in the nested rig on our
// hosts) with a shell on a pty that a person types into, with job
// control and Ctrl-A x ending vmm (shellSession). Its own rig test, apart
// from TestStockAgent, so that a failure of one costs only its own
// retry in a new outer machine.
func TestStockShell(t *testing.T) {
	if !runsHere(t) {
		return
	}
	g := stockUserland(t)
	shellSession(t, exec.Command(vmmBinary(t), g.vmmArgs(g.Cmdline, "-serial", "stdio", "-qmp", qmpArg(t))...), g)
}

// TestStockAgent boots the stock userland (in the nested rig on our
// hosts) and speaks the guest agent's protocol over a virtio-serial port
// under vmm and under QEMU q35 in the same machine, ending with
// guest-shutdown (guestAgentSession).
func TestStockAgent(t *testing.T) {
	if !runsHere(t) {
		return
	}
	g := stockUserland(t)
	t.Run("vmm", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "qga.sock")
		guestAgentSession(t, vmmAgentCmd(t, g, sock), sock, g)
	})
	t.Run("qemu", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "qga.sock")
		guestAgentSession(t, exec.Command(qemuBinary(t), "-enable-kvm", "-M", "q35", "-cpu", "host",
			"-m", g.Mem, "-smp", "2", "-nodefaults", "-no-user-config", "-display", "none",
			"-serial", "stdio", "-no-reboot", "-kernel", g.Kernel, "-initrd", g.Initrd, "-append", g.Cmdline,
			"-device", "virtio-serial-pci",
			"-chardev", "socket,id=qga,path="+sock+",server=on,wait=off",
			"-device", "virtserialport,chardev=qga,name="+agentPort), sock, g)
	})
}
