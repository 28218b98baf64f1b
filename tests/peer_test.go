package tests

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"vmm/soak"
)

// The host side of the serial tests: peers on the unix sockets vmm
// listens on, moving the shared pattern stream.

const ackByte = 0x06

// dial connects to a vmm socket chardev, waiting for vmm to bind it.
func dial(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := dialNoFatal(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialVM connects to path, a socket the VM process p makes, waiting up
// to d: a VMM started under TCG (QEMU in the nested rig) can take tens
// of seconds to bind, and one that exited never will.
func dialVM(t *testing.T, p *vmProc, path string, d time.Duration) net.Conn {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c
		}
		select {
		case <-p.done:
			t.Fatalf("connect %s: the VM exited (%v)\n%s", path, p.err, &p.con)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect %s within %v: %v", path, d, err)
		}
	}
}

// dialNoFatal is dial for goroutines (which must not call t.Fatal).
func dialNoFatal(path string) (net.Conn, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("connect %s: %w", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pattern returns stream bytes [off, off+n) of soak's stream, the one
// the guests write and check.
func pattern(off, n int64) []byte { return soak.Pattern(off, n) }

// receive reads n bytes from c and checks them against the pattern
// from offset off; it returns nil or an error naming the first bad byte.
func receive(c io.Reader, off, n int64) error {
	buf := make([]byte, 256<<10)
	for got := int64(0); got < n; {
		k, err := c.Read(buf[:min(int64(len(buf)), n-got)])
		if k > 0 {
			if i := soak.Check(buf[:k], off+got); i >= 0 {
				at := off + got + int64(i)
				return fmt.Errorf("byte at offset %d is %#x; want %#x", at, buf[i], soak.PatternByte(at))
			}
			got += int64(k)
		}
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", got, n, err)
		}
	}
	return nil
}

// send writes n pattern bytes from offset off.
func send(c io.Writer, off, n int64) error {
	const chunk = 256 << 10
	for done := int64(0); done < n; done += chunk {
		if _, err := c.Write(pattern(off+done, min(chunk, n-done))); err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", done, n, err)
		}
	}
	return nil
}

// linuxPeers serves the Linux init's `vs=out:w:N,in:r:N` jobs from the
// host: it reads and acknowledges org.vmm.out, and writes org.vmm.in.
// The returned function waits for both peers after the VM has ended.
func linuxPeers(t *testing.T, sock func(string) string, size int64) (wait func()) {
	t.Helper()
	errs := make(chan error, 2)
	go func() {
		c, err := dialNoFatal(sock("out"))
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		err = receive(c, 0, size)
		if err == nil {
			_, err = c.Write([]byte{ackByte})
		}
		errs <- err
	}()
	go func() {
		c, err := dialNoFatal(sock("in"))
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		errs <- send(c, 0, size)
	}()
	return func() {
		t.Helper()
		for i := 0; i < 2; i++ {
			select {
			case err := <-errs:
				if err != nil {
					t.Errorf("host peer: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("host peer did not finish")
			}
		}
	}
}
