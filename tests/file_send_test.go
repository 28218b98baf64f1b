package tests

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostFileSend: a 256 MiB file goes host→guest through the test
// guest, which checks every byte against the pattern the file holds;
// the host's sha256 of what it sent is the file's.
func TestHostFileSend(t *testing.T) {
	needKVM(t)
	const size = 256 << 20
	file := filepath.Join(t.TempDir(), "send.bin")
	if err := os.WriteFile(file, pattern(0, size), 0o644); err != nil {
		t.Fatal(err)
	}
	socks, done := serialVM(t, []string{"f"}, "vs f:r:256M; exit 0")
	c := dial(t, socks["f"])
	defer c.Close()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(c, h), f); err != nil {
		t.Fatal(err)
	}
	r := finish(t, done)
	checkLines(t, r.stdout, []string{"guest: vs f:r:256M done bytes=268435456"})
	if got, want := fmt.Sprintf("%x", h.Sum(nil)), sha256Of(pattern(0, size)); got != want {
		t.Errorf("sha256 of what was sent = %s; want the file's %s", got, want)
	}
}

// TestGuestFileSend: the guest sends 256 MiB; the host stores it in a
// file whose sha256 must equal that of the pattern.
func TestGuestFileSend(t *testing.T) {
	needKVM(t)
	const size = 256 << 20
	socks, done := serialVM(t, []string{"f"}, "vs f:w:256M; exit 0")
	c := dial(t, socks["f"])
	defer c.Close()
	file := filepath.Join(t.TempDir(), "recv.bin")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, c, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	finish(t, done)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sha256Of(b), sha256Of(pattern(0, size)); got != want {
		t.Errorf("sha256 of the received file = %s; want %s", got, want)
	}
}

func sha256Of(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// TestPtyPort: a pty chardev prints its path as QEMU does; the port is
// open in the guest's view while a peer has the pty open, and data
// flows once it attaches.
func TestPtyPort(t *testing.T) {
	needKVM(t)
	const size = 1 << 20
	args := []string{"run", "-kernel", guestELF(t), "-m", "256M", "-device", "virtio-serial-device",
		"-chardev", "pty,id=tty", "-device", "virtserialport,chardev=tty,name=tty",
		"-append", "vs-timeout 60; vs tty:w:1M; exit 0"}
	cmd, stdout, stderr := startPiped(t, vmmBinary(t), args...)
	path := ""
	waitUntil(t, 30*time.Second, "vmm to print the pty's path", func() bool {
		if _, p, ok := strings.Cut(stderr.String(), "char device redirected to "); ok {
			path, _, _ = strings.Cut(p, " ")
		}
		return path != ""
	})
	if !strings.HasPrefix(path, "/dev/pts/") || !strings.Contains(stderr.String(), "(label tty)") {
		t.Fatalf("stderr = %q; want \"char device redirected to /dev/pts/N (label tty)\"", stderr.String())
	}
	time.Sleep(300 * time.Millisecond) // no peer yet: the guest's writer waits
	peer, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := receive(peer, 0, size); err != nil {
		t.Fatalf("pty peer: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("vmm: %v\n%s\n%s", err, withoutHeartbeats(stdout.String()), stderr.String())
	}
}
