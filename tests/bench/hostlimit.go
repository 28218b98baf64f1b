package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"vmm/soak"
)

// The host limit: the same transfers between two host processes over
// the same kind of socket (unix stream), in the same run, so every
// throughput row can say how close the VMM comes to what this host's
// sockets move without a VM. The peer process writes the stream from
// memory in the guest's TX buffer size (32 KiB writes), or reads it into
// the room the guest posts (128 RX buffers of 4 KiB, one 512 KiB read);
// it neither generates nor checks the stream (the guest does both, at
// about 1.3–1.9 GiB/s here, and in a VM that work overlaps with the
// VMM's on another thread: a peer doing it inline would measure itself,
// not the socket).

const (
	guestTXBuf  = 32 << 10
	guestRXRoom = 128 * 4096
)

// hostPeer is the peer process (bench -host-peer): it connects to each
// of socks and writes, reads or echoes size bytes on each, concurrently.
func hostPeer(mode string, socks []string, size int64) error {
	var data []byte
	if mode == "w" {
		data = soak.Pattern(0, size) // each port's stream starts at 0
	}
	var wg sync.WaitGroup
	errs := make([]error, len(socks))
	for i, s := range socks {
		c, err := net.Dial("unix", s)
		if err != nil {
			return err
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if mode == "e" { // the guest's echo job: each byte back as it comes
				b := make([]byte, 1)
				for n := int64(0); n < size; n++ {
					if _, err := io.ReadFull(c, b); err != nil {
						errs[i] = fmt.Errorf("echo after %d bytes: %w", n, err)
						return
					}
					if _, err := c.Write(b); err != nil {
						errs[i] = err
						return
					}
				}
				return
			}
			if mode == "w" {
				for off := int64(0); off < size; off += guestTXBuf {
					if _, err := c.Write(data[off:min(off+guestTXBuf, size)]); err != nil {
						errs[i] = err
						return
					}
				}
				return
			}
			buf := make([]byte, guestRXRoom)
			for off := int64(0); off < size; {
				n, err := c.Read(buf[:min(int64(len(buf)), size-off)])
				off += int64(n)
				if err != nil {
					errs[i] = fmt.Errorf("after %d bytes: %w", off, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Println("host-peer done")
	io.Copy(io.Discard, os.Stdin) // alive until the bench has read its CPU time (cpu.go)
	return nil
}

// limitPeer is one run of the peer process with its listeners.
type limitPeer struct {
	cmd    *exec.Cmd
	stdin  io.Closer // closed: the peer exits
	conns  []net.Conn
	stdout *bufio.Reader
	dir    string
}

func startLimitPeer(mode string, ports int, size int64) (*limitPeer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vmm-bench-limit")
	if err != nil {
		return nil, err
	}
	l := &limitPeer{dir: dir}
	var socks []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := 0; i < ports; i++ {
		s := filepath.Join(dir, fmt.Sprintf("p%d.sock", i))
		ln, err := net.Listen("unix", s)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		lns = append(lns, ln)
		socks = append(socks, s)
	}
	l.cmd = exec.Command(self, "-host-peer", mode, "-host-peer-size", fmt.Sprint(size), "-host-peer-socks", strings.Join(socks, ","))
	out, err := l.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l.stdout = bufio.NewReader(out)
	if l.stdin, err = l.cmd.StdinPipe(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l.cmd.Stderr = os.Stderr
	if err := l.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for _, ln := range lns {
		c, err := ln.Accept()
		if err != nil {
			l.close()
			return nil, err
		}
		l.conns = append(l.conns, c)
	}
	return l, nil
}

func (l *limitPeer) close() error {
	for _, c := range l.conns {
		c.Close()
	}
	l.stdin.Close()
	io.Copy(io.Discard, l.stdout)
	err := l.cmd.Wait()
	os.RemoveAll(l.dir)
	return err
}

// limitGuestToHost times transferSize from the peer, first byte to last.
func limitGuestToHost() (xfer, error) {
	var x xfer
	l, err := startLimitPeer("w", 1, transferSize)
	if err != nil {
		return x, err
	}
	defer l.close()
	var w cpuWindow
	if x.mibps, err = readAll(l.conns[0], func() { w = startCPU(l.cmd.Process.Pid) }); err != nil {
		return x, err
	}
	x.cpu = w.end(transferSize)
	return x, nil
}

// readAll reads transferSize bytes from c, timed from the first byte,
// when it calls first.
func readAll(c net.Conn, first func()) (float64, error) {
	buf := make([]byte, 1<<20)
	n, err := c.Read(buf)
	if err != nil {
		return 0, err
	}
	first()
	start := time.Now()
	for got := n; got < transferSize; got += n {
		if n, err = c.Read(buf); err != nil {
			return 0, err
		}
	}
	return transferSize / (1 << 20) / time.Since(start).Seconds(), nil
}

// limitHostToGuest times transferSize to the peer, from the first
// write to its done line.
func limitHostToGuest(data []byte) (xfer, error) {
	var x xfer
	l, err := startLimitPeer("r", 1, transferSize)
	if err != nil {
		return x, err
	}
	defer l.close()
	w := startCPU(l.cmd.Process.Pid)
	start := time.Now()
	if _, err := l.conns[0].Write(data); err != nil {
		return x, err
	}
	line, err := l.stdout.ReadString('\n')
	if !strings.Contains(line, "host-peer done") {
		return x, fmt.Errorf("host peer: %q, %v", line, err)
	}
	x.mibps = transferSize / (1 << 20) / time.Since(start).Seconds()
	x.cpu = w.end(transferSize)
	return x, nil
}

// limitEcho times 1-byte round trips through an echoing peer process:
// the host's own wake-up cost for what the guest's echo job does.
func limitEcho(rounds int) ([]time.Duration, error) {
	l, err := startLimitPeer("e", 1, int64(rounds))
	if err != nil {
		return nil, err
	}
	defer l.close()
	return pingPong(l.conns[0], rounds)
}

// limitMultiPort is multiPort's transfer between host processes:
// aggregate MiB/s and max/min of the per-port rates.
func limitMultiPort() (float64, float64, error) {
	l, err := startLimitPeer("w", multiPorts, multiSize)
	if err != nil {
		return 0, 0, err
	}
	defer l.close()
	return readPorts(l.conns, "host")
}
