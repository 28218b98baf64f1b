package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Eight ports at once, guest→host: aggregate MiB/s and per-port
// fairness (fastest port's MiB/s over the slowest's).

const multiPorts, multiSize = 8, 64 << 20

func multiArgv(name, vmm, guest, dir, cmdline string) []string {
	var a []string
	if name == "vmm" {
		a = []string{vmm, "run", "-kernel", guest, "-m", "256M", "-append", cmdline,
			"-device", "virtio-serial-device,max_ports=9"}
	} else {
		a = append(qemuArgv(), "-kernel", guest, "-append", cmdline, "-m", "256M",
			"-global", "virtio-mmio.force-legacy=false", "-device", "virtio-serial-device,max_ports=9")
	}
	for i := 0; i < multiPorts; i++ {
		a = append(a, "-chardev", fmt.Sprintf("socket,id=p%d,path=%s/p%d.sock,server=on,wait=off", i, dir, i),
			"-device", fmt.Sprintf("virtserialport,chardev=p%d,name=p%d", i, i))
	}
	return a
}

// multiPort runs one VM; it returns aggregate MiB/s and max/min of the
// per-port rates.
func multiPort(name, vmm, guest string) (float64, float64, error) {
	dir, err := os.MkdirTemp("", "vmm-bench")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	var jobs []string
	for i := 0; i < multiPorts; i++ {
		jobs = append(jobs, fmt.Sprintf("p%d:w:64M", i))
	}
	argv := multiArgv(name, vmm, guest, dir, "vs "+strings.Join(jobs, " ")+"; exit 0")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer cmd.Wait()
	conns := make([]net.Conn, multiPorts)
	for i := range conns {
		path := filepath.Join(dir, fmt.Sprintf("p%d.sock", i))
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if conns[i], err = net.Dial("unix", path); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				return 0, 0, fmt.Errorf("%s: connect %s: %w", name, path, err)
			}
		}
		defer conns[i].Close()
	}
	return readPorts(conns, name)
}

// readPorts reads multiSize bytes from each of conns at once; it
// returns aggregate MiB/s and max/min of the per-port rates. The clock
// starts at the first byte any port brings, not at the connections:
// the guest sets up its device (about 130 ms here) before it writes,
// and that is not transfer time (it counted until 2026-12-07).
func readPorts(conns []net.Conn, name string) (float64, float64, error) {
	first := make([]time.Time, len(conns)) // each port's first byte
	ends := make([]time.Time, len(conns))
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for got := 0; got < multiSize; {
				n, err := c.Read(buf)
				if err != nil {
					errs[i] = err
					return
				}
				if got == 0 {
					first[i] = time.Now()
				}
				got += n
			}
			ends[i] = time.Now()
		}()
	}
	wg.Wait()
	for i := range conns {
		if errs[i] != nil {
			return 0, 0, fmt.Errorf("%s port %d: %w", name, i, errs[i])
		}
	}
	start, last := first[0], ends[0]
	for i := range conns {
		start, last = minTime(start, first[i]), maxTime(last, ends[i])
	}
	lo, hi := 0.0, 0.0
	for i := range conns {
		r := multiSize / (1 << 20) / ends[i].Sub(start).Seconds()
		if i == 0 {
			lo, hi = r, r
		}
		lo, hi = min(lo, r), max(hi, r)
	}
	return float64(len(conns)) * multiSize / (1 << 20) / last.Sub(start).Seconds(), hi / lo, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
