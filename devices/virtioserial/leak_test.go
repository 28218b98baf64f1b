package virtioserial

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"vmm/chardev"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestNoFDLeakAcrossReconnects: 1,000 host clients connect to a port's
// unix server socket, send a byte and leave; each is seen, delivered to
// the guest, and cleaned up — the process ends with the fds it had.
func TestNoFDLeakAcrossReconnects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.sock")
	sock := chardev.NewSocket(chardev.SocketConfig{ID: "p", Path: path, Server: true})
	r := newRig(t, 2, PortConfig{Nr: -1, Name: "p", Backend: sock})
	defer sock.Close()
	r.handshake(1)
	r.open(1)
	r.waitFor("port open", func() bool { return r.stats(1).GuestOpen })
	before := openFDs(t)
	const cycles = 1000
	var got []byte
	for i := 0; i < cycles; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte{byte('a' + i%26)})
		c.Close()
		// The byte arrives and the device notices the peer left.
		r.waitFor("delivery and disconnect", func() bool {
			got = append(got, r.read(1)...)
			s := r.stats(1)
			return len(got) == i+1 && !s.HostConnected && s.Connections == uint64(i+1)
		})
	}
	time.Sleep(10 * time.Millisecond)
	if after := openFDs(t); after > before {
		t.Errorf("open fds: %d before %d connect/disconnect cycles, %d after; want no growth", before, cycles, after)
	}
	for i, b := range got {
		if b != byte('a'+i%26) {
			t.Fatalf("byte %d from client %d = %q; want %q (open-write-close writers lose nothing)", i, i, b, byte('a'+i%26))
		}
	}
}
