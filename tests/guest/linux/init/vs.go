package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The `vs=` command moves checkable streams through virtio-serial ports
// with the real Linux driver: vmm.cmd=vs=JOB,JOB,… where JOB is
//
//	NAME:w:N  write N pattern bytes, then wait for the host's ack byte
//	NAME:r:N  read N bytes and check them against the pattern
//	NAME:s:N  write N bytes in the background and do not wait: a writer
//	          the host never reads from (it must block only itself)
//
// All jobs run at once; a heartbeat line goes to the console every
// 500 ms meanwhile, so the host can tell the guest never froze.
const ackByte = 0x06

type vsJob struct {
	port, mode string
	n          int64
}

func parseJobs(spec string) ([]vsJob, error) {
	var jobs []vsJob
	for _, j := range strings.Split(spec, ",") {
		f := strings.Split(j, ":")
		if len(f) != 3 || (f[1] != "w" && f[1] != "r" && f[1] != "s") {
			return nil, fmt.Errorf("bad job %q (want NAME:w|r|s:N)", j)
		}
		n, err := parseSize(f[2])
		if err != nil {
			return nil, fmt.Errorf("job %q: %w", j, err)
		}
		jobs = append(jobs, vsJob{port: f[0], mode: f[1], n: n})
	}
	return jobs, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// portDevice finds /dev/vportNpM for a port name, waiting up to 30 s
// for it: the driver adds ports and learns their names in its control
// work (PORT_ADD, PORT_NAME), after finit_module has returned.
func portDevice(name string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		dev, err := findPort(name)
		if err == nil || time.Now().After(deadline) {
			return dev, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitJobPorts waits for the port of every job in spec (portDevice).
func waitJobPorts(spec string) error {
	jobs, err := parseJobs(spec)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if _, err := portDevice(j.port); err != nil {
			return err
		}
	}
	return nil
}

func findPort(name string) (string, error) {
	const dir = "/sys/class/virtio-ports"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "name"))
		if err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + e.Name(), nil
		}
	}
	return "", fmt.Errorf("no virtio-serial port named %q", name)
}

func runJobs(spec string) error {
	jobs, err := parseJobs(spec)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	go heartbeat(stop)
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		dev, err := portDevice(j.port)
		if err != nil {
			return err
		}
		if j.mode == "s" {
			go stalledWriter(dev, j)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if j.mode == "w" {
				errs[i] = writeJob(dev, j.n)
			} else {
				errs[i] = readJob(dev, j.n)
			}
			if errs[i] == nil {
				d := time.Since(start)
				logf("vs %s:%s:%d done in %v (%.1f MiB/s)", j.port, j.mode, j.n, d.Round(time.Millisecond),
					float64(j.n)/(1<<20)/d.Seconds())
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func writeJob(dev string, n int64) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := writePattern(f, n); err != nil {
		return fmt.Errorf("%s: write: %w", dev, err)
	}
	// The host acknowledges having everything: only then may we stop.
	ack := make([]byte, 1)
	if _, err := f.Read(ack); err != nil || ack[0] != ackByte {
		return fmt.Errorf("%s: waiting for the host's ack: got %x, %v", dev, ack, err)
	}
	return nil
}

func writePattern(f *os.File, n int64) error {
	buf := make([]byte, 32<<10) // one virtio TX buffer per write, as the driver sends
	for off := int64(0); off < n; {
		k := min(int64(len(buf)), n-off)
		fillPattern(buf[:k], off)
		if _, err := f.Write(buf[:k]); err != nil {
			return err
		}
		off += k
	}
	return nil
}

func readJob(dev string, n int64) error {
	f, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	want := make([]byte, len(buf))
	for off := int64(0); off < n; {
		k, err := f.Read(buf[:min(int64(len(buf)), n-off)])
		if k > 0 {
			fillPattern(want[:k], off)
			for i := 0; i < k; i++ {
				if buf[i] != want[i] {
					return fmt.Errorf("%s: byte at offset %d is %#x; want %#x", dev, off+int64(i), buf[i], want[i])
				}
			}
			off += int64(k)
		}
		if err != nil {
			return fmt.Errorf("%s: read at offset %d of %d: %w", dev, off, n, err)
		}
	}
	return nil
}

// stalledWriter writes into a port whose host never reads; it blocks
// once the port's queue is full, and must block nothing else.
func stalledWriter(dev string, j vsJob) {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		logf("vs %s: %v", j.port, err)
		return
	}
	writePattern(f, j.n)
	logf("vs %s:s:%d unexpectedly finished", j.port, j.n)
}

func heartbeat(stop <-chan struct{}) {
	start := time.Now()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			logf("heartbeat %d", time.Since(start).Milliseconds())
		}
	}
}

// fillPattern writes the stream bytes at offsets [off, off+len(b)): byte
// k is byte k%8 of splitmix64(k/8), the pattern every test side shares.
func fillPattern(b []byte, off int64) {
	for i := range b {
		k := uint64(off) + uint64(i)
		b[i] = byte(splitmix64(k/8) >> (8 * (k % 8)))
	}
}

func splitmix64(x uint64) uint64 {
	z := x + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
