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
			"-m", "128M", "-nodefaults", "-nographic", "-no-user-config", "-serial", "stdio",
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

// waitLine reads the guest's output until a line contains s.
func (v *serialVM) waitLine(s string) error {
	for {
		line, err := v.stdout.ReadString('\n')
		if strings.Contains(line, s) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("guest never printed %q: %w", s, err)
		}
	}
}

func (v *serialVM) close() {
	if v.conn != nil {
		v.conn.Close()
	}
	io.Copy(io.Discard, v.stdout)
	v.cmd.Wait()
	os.RemoveAll(v.dir)
}

// guestToHost times 256 MiB from the guest, first byte to last.
func guestToHost(name, vmm, guest string) (float64, error) {
	v, err := startSerialVM(name, vmm, guest, "vs p:w:256M; exit 0")
	if err != nil {
		return 0, err
	}
	defer v.close()
	buf := make([]byte, 1<<20)
	n, err := v.conn.Read(buf)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for got := n; got < transferSize; got += n {
		if n, err = v.conn.Read(buf); err != nil {
			return 0, err
		}
	}
	return transferSize / (1 << 20) / time.Since(start).Seconds(), nil
}

// hostToGuest times 256 MiB to the guest, which checks every byte,
// from the first write to the guest's done line.
func hostToGuest(name, vmm, guest string, data []byte) (float64, error) {
	v, err := startSerialVM(name, vmm, guest, "vs p:r:256M; exit 0")
	if err != nil {
		return 0, err
	}
	defer v.close()
	start := time.Now()
	if _, err := v.conn.Write(data); err != nil {
		return 0, err
	}
	if err := v.waitLine("vs p:r:256M done"); err != nil {
		return 0, err
	}
	return transferSize / (1 << 20) / time.Since(start).Seconds(), nil
}

// echoLatency times 1-byte round trips through the guest's echo job.
func echoLatency(name, vmm, guest string, rounds int) ([]time.Duration, error) {
	v, err := startSerialVM(name, vmm, guest, fmt.Sprintf("vs p:e:%d; exit 0", rounds))
	if err != nil {
		return nil, err
	}
	defer v.close()
	var rtts []time.Duration
	b := []byte{0}
	for i := 0; i < rounds; i++ {
		b[0] = soak.PatternByte(int64(i))
		start := time.Now()
		if _, err := v.conn.Write(b); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(v.conn, b); err != nil {
			return nil, err
		}
		rtts = append(rtts, time.Since(start))
	}
	return rtts[rounds/10:], nil // the first tenth warms up
}

// serialTable runs the serial rows for both peers, interleaved.
func serialTable(vmm, guest string, runs int) (string, error) {
	data := soak.Pattern(0, transferSize)
	g2h := map[string][]float64{}
	h2g := map[string][]float64{}
	lat := map[string][]time.Duration{}
	agg := map[string][]float64{}
	fair := map[string][]float64{}
	for i := 0; i < runs; i++ {
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
			rtts, err := echoLatency(name, vmm, guest, 1000)
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
	fmt.Fprintf(&b, "virtio-serial over a unix socket, test guest, %d runs each, median (min–max); virtio-mmio unless named (QEMU: microvm; PCI rows: q35)\n", runs)
	fmt.Fprintf(&b, "%-34s %-26s %-26s %s\n", "metric", "vmm", "qemu", "vmm/qemu")
	row := func(name, unit string, v, q stat) {
		cell := func(s stat) string { return fmt.Sprintf("%.1f %s (%.1f–%.1f)", s.med, unit, s.lo, s.hi) }
		fmt.Fprintf(&b, "%-34s %-26s %-26s %.2f×\n", name, cell(v), cell(q), v.med/q.med)
	}
	row("guest→host 256 MiB", "MiB/s", summarize(g2h["vmm"]), summarize(g2h["qemu"]))
	row("host→guest 256 MiB", "MiB/s", summarize(h2g["vmm"]), summarize(h2g["qemu"]))
	row("virtio-pci guest→host 256 MiB", "MiB/s", summarize(g2h["vmm-pci"]), summarize(g2h["qemu-pci"]))
	row("virtio-pci host→guest 256 MiB", "MiB/s", summarize(h2g["vmm-pci"]), summarize(h2g["qemu-pci"]))
	row("8 ports guest→host, aggregate", "MiB/s", summarize(agg["vmm"]), summarize(agg["qemu"]))
	row("8 ports fairness (max/min port)", "", summarize(fair["vmm"]), summarize(fair["qemu"]))
	for _, p := range []struct {
		name string
		q    float64
	}{{"1-byte echo RTT median", 0.5}, {"1-byte echo RTT p99", 0.99}} {
		var st [2]stat
		for i, name := range []string{"vmm", "qemu"} {
			xs := lat[name]
			sort.Slice(xs, func(a, b int) bool { return xs[a] < xs[b] })
			v := float64(xs[int(p.q*float64(len(xs)-1))]) / 1e3
			st[i] = stat{v, float64(xs[0]) / 1e3, float64(xs[len(xs)-1]) / 1e3}
		}
		row(p.name, "µs", st[0], st[1])
	}
	return b.String(), nil
}
