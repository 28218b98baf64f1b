// Command bench measures vmm against QEMU on the same test guest in the
// same run and prints a table of medians (min–max) with ratios:
// time from process start to the guest's first line on COM1, time to VM
// exit, and the VMM's peak RSS. `make bench` runs it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// sample is one boot: durations from fork to the first line and to exit.
type sample struct {
	firstLine, exit time.Duration
	rssKiB          int64
}

// peer is one VMM under test.
type peer struct {
	name string
	argv func(guest, cmdline string) []string
}

func main() {
	vmm := flag.String("vmm", "build/vmm", "vmm binary")
	guest := flag.String("guest", "tests/guest/build/guest.elf", "test guest ELF")
	runs := flag.Int("runs", 7, "boots per peer and row")
	out := flag.String("out", "", "also write the table to this file")
	linux := flag.String("linux", "", "also time the Linux test kernel in this folder (vmlinux, initrd.cpio)")
	linuxRuns := flag.Int("linux-runs", 5, "boots per peer for the Linux rows")
	stock := flag.String("stock", "", "time Debian's stock kernel in this folder (bzImage, initrd.cpio) in the nested rig, whose outer machine is prepared from -build")
	stockRuns := flag.Int("stock-runs", 3, "boots per peer for the stock-kernel rows")
	build := flag.String("build", "build", "the build folder (the nested rig's files)")
	inRig := flag.Bool("in-rig", false, "internal: time the -stock kernel here and print its table (the rig runs this)")
	hostPeerMode := flag.String("host-peer", "", "internal: be the host-limit peer process, w(rite) or r(ead)")
	hostPeerSocks := flag.String("host-peer-socks", "", "internal: the host-limit peer's sockets, comma-separated")
	hostPeerSize := flag.Int64("host-peer-size", 0, "internal: bytes per socket for the host-limit peer")
	serialOnly := flag.Bool("serial-only", false, "only the virtio-serial table (no boot rows)")
	snapOnly := flag.Bool("snapshot-only", false, "only the snapshot table")
	flag.Parse()
	if *hostPeerMode != "" {
		if err := hostPeer(*hostPeerMode, strings.Split(*hostPeerSocks, ","), *hostPeerSize); err != nil {
			fmt.Fprintf(os.Stderr, "bench host peer: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if *inRig {
		fmt.Print(stockTable(*vmm, *stock, *stockRuns))
		return
	}

	peers := []peer{
		{"vmm", func(g, c string) []string {
			return []string{*vmm, "run", "-kernel", g, "-m", "128M", "-append", c}
		}},
		{"qemu", func(g, c string) []string {
			return append(qemuArgv(), "-kernel", g, "-append", c)
		}},
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: qemu-system-x86_64 not found; install qemu-system-x86 (make deps)")
		os.Exit(1)
	}
	if *snapOnly {
		t, err := snapshotTable(*vmm, *guest, *linux, *runs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: snapshot: %v\n", err)
			os.Exit(1)
		}
		fmt.Print(t)
		return
	}
	var table string
	if !*serialOnly {
		results := measure(peers, *guest, "exit 0", "guest: hello", *runs)
		table = render(fmt.Sprintf("vmm vs QEMU %s, test guest, %d runs each, median (min–max)", qemuVersion(), *runs),
			"first guest line", "128 MiB", results) + "\n"
	}
	serial, err := serialTable(*vmm, *guest, *runs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	table += serial
	if *linux != "" && !*serialOnly {
		const cmdline = "console=ttyS0 quiet noxsave clearcpuid=151,308,297,580,141 reboot=t rodata=off retain_initrd vmm.cmd=exit=0"
		initrd := *linux + "/initrd.cpio"
		lpeers := []peer{
			{"vmm", func(g, c string) []string {
				return []string{*vmm, "run", "-kernel", g, "-initrd", initrd, "-m", "128M",
					"-cpu", "host,kvm-pv-ipi=off,kvm-pv-sched-yield=off", "-append", c}
			}},
			{"qemu", func(g, c string) []string {
				return append(qemuArgv(), "-kernel", g, "-initrd", initrd, "-append", c)
			}},
		}
		lres := measure(lpeers, *linux+"/vmlinux", cmdline, "vmm-init: ready", *linuxRuns)
		table += "\n" + render(fmt.Sprintf("Linux test kernel, -smp 1, %d runs each, median (min–max)", *linuxRuns),
			"init's marker line", "128 MiB", lres)
	}
	if !*serialOnly {
		t, err := snapshotTable(*vmm, *guest, *linux, min(*linuxRuns, 3)) // a cold Linux boot takes 10-30 s here
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: snapshot: %v\n", err)
			os.Exit(1)
		}
		table += "\n" + t
	}
	status := 0
	if *stock != "" && !*serialOnly {
		t, err := stockInRig(*build, *vmm, *stock, *stockRuns)
		if err != nil {
			// The rows above took many minutes: they are kept.
			fmt.Fprintf(os.Stderr, "bench: stock kernel in the nested rig: %v\n", err)
			t, status = "stock-kernel rows: none (the nested rig failed; see stderr)\n", 1
		}
		table += "\n" + t
	}
	fmt.Print(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
	}
	os.Exit(status)
}

// measure boots each peer runs times, interleaved so that drift in the
// host affects both alike.
func measure(peers []peer, kernel, cmdline, marker string, runs int) map[string][]sample {
	results := map[string][]sample{}
	for i := 0; i < runs; i++ {
		for _, p := range peers {
			s, err := boot(p.argv(kernel, cmdline), marker)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %s: %v\n", p.name, err)
				os.Exit(1)
			}
			results[p.name] = append(results[p.name], s)
		}
	}
	return results
}

// qemuArgv is QEMU's closest equivalent of `vmm run`: microvm, no ACPI,
// no firmware devices, the debug-exit port, serial on stdio; its vCPU
// threads named (debug-threads), as vmm's are, for the CPU rows.
func qemuArgv() []string {
	return []string{"qemu-system-x86_64", "-enable-kvm", "-M", "microvm,acpi=off",
		"-cpu", "host,-arch-capabilities", "-m", "128M", "-nodefaults", "-nographic",
		"-no-user-config", "-serial", "stdio", "-name", "bench,debug-threads=on",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=4"}
}

// boot runs one VM and times the first stdout line containing marker,
// and its exit.
func boot(argv []string, marker string) (sample, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return sample{}, err
	}
	cmd.Stderr = io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	var s sample
	// ru_maxrss from wait4 would include the bench's own image from
	// before exec; sample the child's VmHWM instead, until it exits.
	stopSampling := make(chan struct{})
	sampled := make(chan int64, 1)
	go func() {
		var last int64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := vmHWM(cmd.Process.Pid); v > 0 {
				last = v
			}
			select {
			case <-stopSampling:
				sampled <- last
				return
			case <-t.C:
			}
		}
	}()
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadString('\n')
		if strings.Contains(line, marker) {
			break
		}
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return sample{}, fmt.Errorf("no line with %q before %v", marker, err)
		}
	}
	s.firstLine = time.Since(start)
	io.Copy(io.Discard, r) // until the VM's stdout closes: it is exiting
	close(stopSampling)
	s.rssKiB = <-sampled
	cmd.Wait() // QEMU's debug-exit status is 2v+1: not an error here
	s.exit = time.Since(start)
	return s, nil
}

// vmHWM reads a process's peak resident set size in KiB (0 if gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kib)
			return kib
		}
	}
	return 0
}

// stat is a median with its range.
type stat struct{ med, lo, hi float64 }

func summarize(xs []float64) stat {
	sort.Float64s(xs)
	return stat{xs[len(xs)/2], xs[0], xs[len(xs)-1]}
}

func render(title, firstLine, guestMem string, res map[string][]sample) string {
	var b strings.Builder
	fmt.Fprintln(&b, title)
	fmt.Fprintf(&b, "%-34s %-26s %-26s %s\n", "metric", "vmm", "qemu", "vmm/qemu")
	rows := []struct {
		name, unit string
		get        func(sample) float64
	}{
		{"start → " + firstLine, "ms", func(s sample) float64 { return float64(s.firstLine) / 1e6 }},
		{"start → VM exit", "ms", func(s sample) float64 { return float64(s.exit) / 1e6 }},
		{"VMM peak RSS (" + guestMem + " guest)", "MiB", func(s sample) float64 { return float64(s.rssKiB) / 1024 }},
	}
	for _, row := range rows {
		var st [2]stat
		for i, name := range []string{"vmm", "qemu"} {
			var xs []float64
			for _, s := range res[name] {
				xs = append(xs, row.get(s))
			}
			st[i] = summarize(xs)
		}
		cell := func(s stat) string {
			return fmt.Sprintf("%.1f %s (%.1f–%.1f)", s.med, row.unit, s.lo, s.hi)
		}
		fmt.Fprintf(&b, "%-34s %-26s %-26s %.2f×\n", row.name, cell(st[0]), cell(st[1]), st[0].med/st[1].med)
	}
	return b.String()
}

func qemuVersion() string {
	out, err := exec.Command("qemu-system-x86_64", "--version").Output()
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(out))
	if len(f) >= 4 {
		return f[3]
	}
	return strings.TrimSpace(string(out))
}
