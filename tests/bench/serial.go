package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"vmm/soak"
)

// Serial rows: one virtio-serial port over a unix socket, the test
// guest on the other end, vmm and QEMU's virtio-serial-device alike.

const transferSize = 256 << 20

// echoRounds is the round trips of one echo run.
const echoRounds = 1000

// linger keeps the guest, and so its vCPU thread, running for about
// 40 ms after a transfer, past the end of the bench's CPU window
// (cpu.go), which a thread that ends within it leaves uncounted.
const linger = "loop 30000000"

// serialArgv returns the VM command line for one peer with port "p";
// peer names ending in "-pci" use virtio-pci (QEMU: on q35).
func serialArgv(name, vmm, guest, sock, cmdline string) []string {
	chardev := []string{"-chardev", "socket,id=p,path=" + sock + ",server=on,wait=off",
		"-device", "virtserialport,chardev=p,name=p"}
	switch name {
	case "vmm":
		return append([]string{vmm, "run", "-kernel", guest, "-m", "128M", "-append", cmdline,
			"-device", "virtio-serial-device"}, chardev...)
	case "vmm-pci":
		return append([]string{vmm, "run", "-kernel", guest, "-m", "128M", "-append", cmdline,
			"-device", "virtio-serial-pci"}, chardev...)
	case "qemu-pci":
		return append([]string{"qemu-system-x86_64", "-enable-kvm", "-M", "q35", "-cpu", "host,-arch-capabilities",
			"-m", "128M", "-nodefaults", "-nographic", "-no-user-config", "-serial", "stdio", "-name", "bench,debug-threads=on",
			"-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", guest, "-append", cmdline,
			"-device", "virtio-serial-pci"}, chardev...)
	}
	a := append(qemuArgv(), "-kernel", guest, "-append", cmdline,
		"-global", "virtio-mmio.force-legacy=false", "-device", "virtio-serial-device")
	return append(a, chardev...)
}

// serialVM is one running VM with its port connected.
type serialVM struct {
	cmd    *exec.Cmd
	conn   net.Conn
	stdout *bufio.Reader
	dir    string
}

func startSerialVM(name, vmm, guest, cmdline string) (*serialVM, error) {
	dir, err := os.MkdirTemp("", "vmm-bench")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "p.sock")
	argv := serialArgv(name, vmm, guest, sock, cmdline)
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	cmd.Env = append(os.Environ(), "VMM_KVM_STATS="+filepath.Join(dir, "kvm-stats"))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	v := &serialVM{cmd: cmd, stdout: bufio.NewReader(out), dir: dir}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if v.conn, err = net.Dial("unix", sock); err == nil {
			return v, nil
		}
		if time.Now().After(deadline) {
			v.close()
			return nil, fmt.Errorf("%s: connect %s: %w", name, sock, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLine reads the guest's output until a line contains s, and
// returns that line.
func (v *serialVM) waitLine(s string) (string, error) {
	for {
		line, err := v.stdout.ReadString('\n')
		if strings.Contains(line, s) {
			return line, nil
		}
		if err != nil {
			return "", fmt.Errorf("guest never printed %q: %w", s, err)
		}
	}
}

// close ends the VM; it returns vmm's KVM statistics (nil for QEMU).
func (v *serialVM) close() map[string]uint64 {
	if v.conn != nil {
		v.conn.Close()
	}
	io.Copy(io.Discard, v.stdout)
	v.cmd.Wait()
	stats := readKVMStats(filepath.Join(v.dir, "kvm-stats"))
	os.RemoveAll(v.dir)
	return stats
}

// xfer is one timed transfer and what it cost, per MiB moved.
type xfer struct {
	mibps       float64
	kicks, irqs float64 // guest's counts (notifications sent, interrupts taken)
	exits       float64 // KVM's vCPU exits (vmm only; -1 unknown)
	rssExtraMiB float64 // VMM RSS beyond the guest RAM mapping
	cpu         cpuBusy
}

// finish fills x's per-MiB counts from the guest's "vs done" line and
// the VM's KVM stats.
func (x *xfer) finish(doneLine string, stats map[string]uint64) {
	const mib = transferSize >> 20
	var cycles, kicks, irqs uint64
	if i := strings.Index(doneLine, "vs done cycles="); i >= 0 {
		fmt.Sscanf(doneLine[i:], "vs done cycles=%d kicks=%d irqs=%d", &cycles, &kicks, &irqs)
	}
	x.kicks, x.irqs = float64(kicks)/mib, float64(irqs)/mib
	x.exits = -1
	if e, ok := stats["exits"]; ok {
		x.exits = float64(e) / mib
	}
}

// readKVMStats reads the file vmm writes for VMM_KVM_STATS.
func readKVMStats(path string) map[string]uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	stats := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		var k string
		var v uint64
		if n, _ := fmt.Sscanf(line, "%s %d", &k, &v); n == 2 {
			stats[k] = v
		}
	}
	return stats
}

// rssBeyondGuest is a process's RSS in MiB without its guest RAM
// mapping (the largest mapping of guestMiB up to guestMiB+4 MiB).
func rssBeyondGuest(pid, guestMiB int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return -1
	}
	var total, guestRSS, size, rss int64
	flush := func() {
		total += rss
		if size >= int64(guestMiB)<<10 && size <= int64(guestMiB+4)<<10 && rss > guestRSS {
			guestRSS = rss
		}
		size, rss = 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "Size:":
			fmt.Sscan(f[1], &size)
		case len(f) >= 2 && f[0] == "Rss:":
			fmt.Sscan(f[1], &rss)
		case len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			flush()
		}
	}
	flush()
	return float64(total-guestRSS) / 1024
}

// guestToHost times 256 MiB from the guest, first byte to last.
func guestToHost(name, vmm, guest string) (xfer, error) {
	var x xfer
	v, err := startSerialVM(name, vmm, guest, "vs p:w:256M; "+linger+"; exit 0")
	if err != nil {
		return x, err
	}
	defer func() {
		if v != nil {
			v.close()
		}
	}()
	var w cpuWindow
	if x.mibps, err = readAll(v.conn, func() { w = startCPU(v.cmd.Process.Pid) }); err != nil {
		return x, err
	}
	x.cpu = w.end(transferSize)
	x.rssExtraMiB = rssBeyondGuest(v.cmd.Process.Pid, 128)
	line, err := v.waitLine("vs done cycles=")
	if err != nil {
		return x, err
	}
	stats := v.close()
	v = nil
	x.finish(line, stats)
	return x, nil
}

// hostToGuest times 256 MiB to the guest, which checks every byte,
// from the first write to the guest's done line. The guest sets up its
// virtio-serial device first (vs-ports, about 130 ms of its emulated
// kernel-mode code here), and the clock starts once it has: the host
// could otherwise write before the guest reads, and that set-up would
// count as transfer time (it did, until 2026-12-07).
func hostToGuest(name, vmm, guest string, data []byte) (xfer, error) {
	var x xfer
	v, err := startSerialVM(name, vmm, guest, "vs-ports; vs p:r:256M; "+linger+"; exit 0")
	if err != nil {
		return x, err
	}
	defer func() {
		if v != nil {
			v.close()
		}
	}()
	if _, err := v.waitLine("vs max_ports="); err != nil {
		return x, err
	}
	w := startCPU(v.cmd.Process.Pid)
	start := time.Now()
	if _, err := v.conn.Write(data); err != nil {
		return x, err
	}
	x.rssExtraMiB = rssBeyondGuest(v.cmd.Process.Pid, 128)
	if _, err := v.waitLine("vs p:r:256M done"); err != nil {
		return x, err
	}
	x.mibps = transferSize / (1 << 20) / time.Since(start).Seconds()
	x.cpu = w.end(transferSize)
	line, err := v.waitLine("vs done cycles=")
	if err != nil {
		return x, err
	}
	stats := v.close()
	v = nil
	x.finish(line, stats)
	return x, nil
}

// guestAlone is the guest's own guest→host rate: the same 256 MiB into
// a file chardev on /dev/null (no socket, no host peer; QEMU's null
// chardev never reports the port open), from the guest's TSC cycles
// and its calibrated kHz.
func guestAlone(name, vmm, guest string) (float64, error) {
	argv := serialArgv(name, vmm, guest, "", "tsc; vs p:w:256M; exit 0")
	for i, a := range argv {
		if strings.HasPrefix(a, "socket,id=p,") {
			argv[i] = "file,id=p,path=/dev/null"
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = io.Discard
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return 0, err
	}
	var khz, cycles uint64
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "guest: tsc "); i >= 0 {
			fmt.Sscanf(line[i:], "guest: tsc %d kHz", &khz)
		}
		if i := strings.Index(line, "vs done cycles="); i >= 0 {
			fmt.Sscanf(line[i:], "vs done cycles=%d", &cycles)
		}
	}
	if khz == 0 || cycles == 0 {
		return 0, fmt.Errorf("no tsc or vs done line in %q", out)
	}
	return transferSize / (1 << 20) / (float64(cycles) / (float64(khz) * 1000)), nil
}

// echoLatency times 1-byte round trips through the guest's echo job.
func echoLatency(name, vmm, guest string, rounds int) ([]time.Duration, error) {
	v, err := startSerialVM(name, vmm, guest, fmt.Sprintf("vs p:e:%d; exit 0", rounds))
	if err != nil {
		return nil, err
	}
	defer v.close()
	return pingPong(v.conn, rounds)
}

// pingPong sends rounds single bytes through c, each after the last one
// came back, and returns the round trips but the first tenth's (warm-up).
func pingPong(c net.Conn, rounds int) ([]time.Duration, error) {
	var rtts []time.Duration
	b := []byte{0}
	for i := 0; i < rounds; i++ {
		b[0] = soak.PatternByte(int64(i))
		start := time.Now()
		if _, err := c.Write(b); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return nil, err
		}
		rtts = append(rtts, time.Since(start))
	}
	return rtts[rounds/10:], nil // the first tenth warms up
}

// serialTable runs the serial rows for both peers and the host limit,
// interleaved.
func serialTable(vmm, guest string, runs int) (string, error) {
	data := soak.Pattern(0, transferSize)
	g2h := map[string][]xfer{}
	h2g := map[string][]xfer{}
	lat := map[string][]time.Duration{}
	agg := map[string][]float64{}
	fair := map[string][]float64{}
	alone := map[string][]float64{}
	for i := 0; i < runs; i++ {
		x, err := limitGuestToHost()
		if err != nil {
			return "", fmt.Errorf("host limit guest→host: %w", err)
		}
		g2h["limit"] = append(g2h["limit"], x)
		if x, err = limitHostToGuest(data); err != nil {
			return "", fmt.Errorf("host limit host→guest: %w", err)
		}
		h2g["limit"] = append(h2g["limit"], x)
		a, f, err := limitMultiPort()
		if err != nil {
			return "", fmt.Errorf("host limit 8 ports: %w", err)
		}
		agg["limit"] = append(agg["limit"], a)
		fair["limit"] = append(fair["limit"], f)
		rtts, err := limitEcho(echoRounds)
		if err != nil {
			return "", fmt.Errorf("host limit echo: %w", err)
		}
		lat["limit"] = append(lat["limit"], rtts...)
		for _, name := range []string{"vmm-pci", "qemu-pci"} {
			x, err := guestToHost(name, vmm, guest)
			if err != nil {
				return "", fmt.Errorf("%s guest→host: %w", name, err)
			}
			g2h[name] = append(g2h[name], x)
			if x, err = hostToGuest(name, vmm, guest, data); err != nil {
				return "", fmt.Errorf("%s host→guest: %w", name, err)
			}
			h2g[name] = append(h2g[name], x)
		}
		for _, name := range []string{"vmm", "qemu"} {
			x, err := guestToHost(name, vmm, guest)
			if err != nil {
				return "", fmt.Errorf("%s guest→host: %w", name, err)
			}
			g2h[name] = append(g2h[name], x)
			if x, err = hostToGuest(name, vmm, guest, data); err != nil {
				return "", fmt.Errorf("%s host→guest: %w", name, err)
			}
			h2g[name] = append(h2g[name], x)
			a, err := guestAlone(name, vmm, guest)
			if err != nil {
				return "", fmt.Errorf("%s guest→/dev/null: %w", name, err)
			}
			alone[name] = append(alone[name], a)
			rtts, err := echoLatency(name, vmm, guest, echoRounds)
			if err != nil {
				return "", fmt.Errorf("%s echo: %w", name, err)
			}
			lat[name] = append(lat[name], rtts...)
			a, f, err := multiPort(name, vmm, guest)
			if err != nil {
				return "", fmt.Errorf("%s 8 ports: %w", name, err)
			}
			agg[name] = append(agg[name], a)
			fair[name] = append(fair[name], f)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "virtio-serial over a unix socket, test guest, %d runs each, median (min–max); virtio-mmio unless named (QEMU: microvm; PCI rows: q35);\n", runs)
	fmt.Fprintf(&b, "host limit: the same transfer between two host processes over a unix socket (writer from memory in 32 KiB writes, reader into 512 KiB; no pattern work; echo: a process sending each byte back)\n")
	fmt.Fprintf(&b, "%-44s %-26s %-26s %-26s %-9s %s\n", "metric", "vmm", "qemu", "host limit", "vmm/qemu", "vmm/limit")
	cell := func(s stat, unit string) string {
		if s.med < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f %s (%.1f–%.1f)", s.med, unit, s.lo, s.hi)
	}
	ratio := func(a, b stat) string {
		if a.med < 0 || b.med <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", a.med/b.med)
	}
	row := func(name, unit string, v, q, l stat, hasLimit bool) {
		lc, lr := "—", "—"
		if hasLimit {
			lc, lr = cell(l, unit), ratio(v, l)
		}
		fmt.Fprintf(&b, "%-44s %-26s %-26s %-26s %-9s %s\n", name, cell(v, unit), cell(q, unit), lc, ratio(v, q), lr)
	}
	get := func(xs []xfer, f func(xfer) float64) stat {
		var v []float64
		for _, x := range xs {
			v = append(v, f(x))
		}
		if len(v) == 0 {
			return stat{-1, -1, -1}
		}
		return summarize(v)
	}
	rate := func(x xfer) float64 { return x.mibps }
	row("guest→host 256 MiB", "MiB/s", get(g2h["vmm"], rate), get(g2h["qemu"], rate), get(g2h["limit"], rate), true)
	row("guest→/dev/null (the guest's own rate)", "MiB/s", summarize(alone["vmm"]), summarize(alone["qemu"]), stat{}, false)
	row("host→guest 256 MiB", "MiB/s", get(h2g["vmm"], rate), get(h2g["qemu"], rate), get(h2g["limit"], rate), true)
	row("virtio-pci guest→host 256 MiB", "MiB/s", get(g2h["vmm-pci"], rate), get(g2h["qemu-pci"], rate), get(g2h["limit"], rate), true)
	row("virtio-pci host→guest 256 MiB", "MiB/s", get(h2g["vmm-pci"], rate), get(h2g["qemu-pci"], rate), get(h2g["limit"], rate), true)
	row("8 ports guest→host, aggregate", "MiB/s", summarize(agg["vmm"]), summarize(agg["qemu"]), summarize(agg["limit"]), true)
	row("8 ports fairness (max/min port)", "", summarize(fair["vmm"]), summarize(fair["qemu"]), summarize(fair["limit"]), true)
	for _, p := range []struct {
		name string
		q    float64
	}{{"1-byte echo RTT median", 0.5}, {"1-byte echo RTT p99", 0.99}} {
		var st [3]stat
		for i, name := range []string{"vmm", "qemu", "limit"} {
			xs := lat[name]
			sort.Slice(xs, func(a, b int) bool { return xs[a] < xs[b] })
			v := float64(xs[int(p.q*float64(len(xs)-1))]) / 1e3
			st[i] = stat{v, float64(xs[0]) / 1e3, float64(xs[len(xs)-1]) / 1e3}
		}
		row(p.name, "µs", st[0], st[1], st[2], true)
	}
	for _, d := range []struct {
		dir string
		xs  map[string][]xfer
	}{{"guest→host", g2h}, {"host→guest", h2g}} {
		for _, m := range []struct {
			what string
			f    func(xfer) float64
		}{
			{"VM exits per MiB (KVM stats)", func(x xfer) float64 { return x.exits }},
			{"kicks per MiB (guest count)", func(x xfer) float64 { return x.kicks }},
			{"interrupts per MiB (guest count)", func(x xfer) float64 { return x.irqs }},
			{"VMM RSS beyond guest RAM, MiB", func(x xfer) float64 { return x.rssExtraMiB }},
		} {
			row(d.dir+" "+m.what, "", get(d.xs["vmm"], m.f), get(d.xs["qemu"], m.f), stat{}, false)
		}
		for _, m := range []struct {
			what     string
			f        func(xfer) float64
			hasLimit bool
		}{
			{"CPU: vCPU threads, cores busy", func(x xfer) float64 { return x.cpu.vcpu }, false},
			{"CPU: VMM's other threads, cores busy", func(x xfer) float64 { return x.cpu.other }, false},
			{"CPU: host peer (bench), cores busy", func(x xfer) float64 { return x.cpu.peer }, false},
			{fmt.Sprintf("CPU: all, cores busy (host has %d)", hostCores()), func(x xfer) float64 { return x.cpu.total() }, true},
			{"CPU: VMM's other threads, ms per GiB", func(x xfer) float64 { return x.cpu.otherMsPerGiB }, false},
		} {
			row(d.dir+" "+m.what, "", get(d.xs["vmm"], m.f), get(d.xs["qemu"], m.f), get(d.xs["limit"], m.f), m.hasLimit)
		}
	}
	return b.String(), nil
}
