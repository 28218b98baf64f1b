package tests

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Linux-side acceptance suite of the virtio-serial device: the real
// virtio_console driver, driven by the test kernel's init (vmm.cmd=accept,
// tests/guest/linux/init/acceptance.go), against host peers on unix
// sockets that react to the cue lines the init prints. One boot runs
// every case in order, each on its own port org.vmm.t.NAME.

// acceptanceCases is the init's case list, in its order.
var acceptanceCases = []string{
	"open_close", "multiple_open", "port_names", "read_without_host", "lseek_refused",
	"blocking_read", "nonblocking_read", "poll_states", "close_discards", "host_write_while_closed",
	"sigio", "threaded_read_write", "host_file_send", "guest_file_send",
	"blocking_write", "nonblocking_write",
}

// hostFileSize is what host_file_send streams (guest_file_send's size
// comes in its cue).
const hostFileSize = 32 << 20

// TestLinuxAcceptance boots the Linux test kernel once and runs every
// acceptance case; each is a subtest reporting the guest's verdict and
// its host peer's.
func TestLinuxAcceptance(t *testing.T) {
	needKVM(t)
	vmlinux, initrd := linuxKernel(t)
	dir := t.TempDir()
	sock := func(n string) string { return filepath.Join(dir, n+".sock") }
	hostFile, hostSum, err := writeRandomFile(filepath.Join(dir, "host_file"), hostFileSize)
	if err != nil {
		t.Fatal(err)
	}

	// VMM_ACCEPT_CASES=a,b runs only those cases (every port is still
	// there); VMM_ACCEPT_SMP sets the vCPUs.
	cmd, run := "accept", acceptanceCases
	if sel := os.Getenv("VMM_ACCEPT_CASES"); sel != "" {
		cmd, run = "accept="+sel, strings.Split(sel, ",")
	}
	smp := cmp.Or(os.Getenv("VMM_ACCEPT_SMP"), "2")
	args := []string{"-kernel", vmlinux, "-initrd", initrd, "-m", "256M",
		"-smp", smp, "-cpu", linuxCPU,
		"-append", linuxCmdline + " vmm.cmd=" + cmd,
		"-device", fmt.Sprintf("virtio-serial-device,max_ports=%d", len(acceptanceCases)+1),
		"-chardev", "null,id=con", "-device", "virtconsole,chardev=con,name=org.vmm.console",
	}
	for _, n := range acceptanceCases {
		args = append(args, "-chardev", fmt.Sprintf("socket,id=%s,path=%s,server=on,wait=off", n, sock(n)),
			"-device", "virtserialport,chardev="+n+",name=org.vmm.t."+n)
	}
	start := time.Now()
	vm := startLineVM(t, 8*time.Minute, args...) // 2.5-3 min here; CI hosts may be slower

	script := func(verbs map[string]verbFunc) peerFunc {
		return func(p *peer) error { return p.script(verbs) }
	}
	peers := map[string]peerFunc{
		"blocking_read":           script(nil),
		"nonblocking_read":        script(nil),
		"poll_states":             script(nil),
		"close_discards":          script(nil),
		"host_write_while_closed": script(nil),
		"sigio":                   script(nil),
		"threaded_read_write":     script(nil),
		"blocking_write":          script(nil),
		"nonblocking_write":       script(nil),
		"host_file_send": func(p *peer) error {
			err := p.script(map[string]verbFunc{"connect": func(p *peer, _ map[string]int64) error {
				return p.sendFile(hostFile)
			}})
			return errors.Join(err, p.checkSHA(hostFileSize, hostSum))
		},
		"guest_file_send": script(map[string]verbFunc{"connect": func(p *peer, kv map[string]int64) error {
			return p.receiveFile(filepath.Join(dir, "guest_file"), kv["bytes"])
		}}),
	}
	peerErrs := map[string]chan error{}
	for name, fn := range peers {
		ch := make(chan error, 1)
		peerErrs[name] = ch
		p := &peer{vm: vm, name: name, sock: sock(name)}
		go func() { ch <- fn(p) }()
	}

	status, timedOut := vm.wait()
	elapsed := time.Since(start)
	out := vm.output()
	if timedOut {
		t.Errorf("vmm did not end within its timeout\n%s\nstderr:\n%s", out, vm.stderr.String())
	} else if status != 0 {
		t.Errorf("vmm exit status = %d; want 0 (every case ok)\n%s\nstderr:\n%s", status, out, vm.stderr.String())
	}

	for _, name := range run {
		t.Run(name, func(t *testing.T) {
			verdict, took := vm.verdict(name)
			switch {
			case verdict == "ok":
			case verdict == "":
				t.Errorf("case %s: the guest printed no verdict; want %q", name, "vmm-init: case "+name+" ok")
			default:
				t.Errorf("case %s: guest: %s; want ok", name, verdict)
			}
			if ch, ok := peerErrs[name]; ok {
				select {
				case err := <-ch:
					if err != nil {
						t.Errorf("case %s: host peer: %v", name, err)
					}
				case <-time.After(10 * time.Second):
					t.Errorf("case %s: host peer did not finish 10s after the VM ended", name)
				}
			}
			if name == "port_names" {
				want := []string{"name=org.vmm.console"}
				for _, n := range acceptanceCases {
					want = append(want, "name=org.vmm.t."+n)
				}
				for _, w := range want {
					if !regexp.MustCompile(`(?m)^vmm-init: port vport\d+p\d+ ` + regexp.QuoteMeta(w) + `$`).MatchString(out) {
						t.Errorf("case port_names: no %q line listing a port with %s; want one per port", "vmm-init: port vportNpM", w)
					}
				}
			}
			for _, l := range vm.linesWith("vmm-init: sha256 "+name+" ", "vmm-init: "+name+" ") {
				t.Logf("guest: %s", l)
			}
			t.Logf("case %s: %v (guest start to verdict)", name, took.Round(time.Millisecond))
		})
	}
	t.Logf("whole run: %v (vmm start to exit; boot to first case %v)", elapsed.Round(time.Millisecond),
		vm.firstCase().Round(time.Millisecond))
}

// writeRandomFile writes n seeded ChaCha8 bytes to path and returns
// path and their sha256.
func writeRandomFile(path string, n int64) (string, [32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.NewChaCha8([32]byte{'h', 'o', 's', 't'}), n); err != nil {
		return "", [32]byte{}, fmt.Errorf("write %s: %w", path, err)
	}
	return path, [32]byte(h.Sum(nil)), f.Close()
}

// A peer is the host side of one case: it acts on the case's cue lines
// in order until the case's verdict line.
type peer struct {
	vm   *lineVM
	name string
	sock string
	conn net.Conn
	next int // index of the next console line to look at
}

type peerFunc func(*peer) error

// verbFunc acts on one cue; kv holds its k=N words.
type verbFunc func(p *peer, kv map[string]int64) error

// defaultVerbs are the cues the init's cases share:
//
//	connect          dial the port's socket (and read nothing)
//	write [off=O] n=N  write pattern bytes [O, O+N)
//	read n=N         read and check pattern bytes [0, N), then ack
//	echo             dial and echo everything back
//	disconnect       hang up
var defaultVerbs = map[string]verbFunc{
	"connect": func(p *peer, _ map[string]int64) error { return p.dial() },
	"write": func(p *peer, kv map[string]int64) error {
		if p.conn == nil {
			return errors.New("write cue with no connection")
		}
		return send(p.conn, kv["off"], kv["n"])
	},
	"read": func(p *peer, kv map[string]int64) error {
		if p.conn == nil {
			return errors.New("read cue with no connection")
		}
		if err := receive(p.conn, 0, kv["n"]); err != nil {
			return err
		}
		_, err := p.conn.Write([]byte{ackByte})
		return err
	},
	"echo": func(p *peer, _ map[string]int64) error {
		if err := p.dial(); err != nil {
			return err
		}
		go io.Copy(p.conn, p.conn) // until the hang-up at the case's end
		return nil
	},
	"disconnect": func(p *peer, _ map[string]int64) error { return p.hangUp() },
}

// script runs the case's cues through verbs (then defaultVerbs) until
// the case's verdict; the first failing cue ends it.
func (p *peer) script(verbs map[string]verbFunc) error {
	defer p.hangUp()
	cuePrefix := "vmm-init: cue " + p.name + " "
	endPrefix := "vmm-init: case " + p.name + " "
	for {
		i, line, err := p.vm.next(p.next, func(l string) bool {
			return strings.HasPrefix(l, cuePrefix) || isVerdict(l, endPrefix)
		})
		if err != nil {
			return err
		}
		p.next = i + 1
		if !strings.HasPrefix(line, cuePrefix) {
			return nil // the verdict: the case is over
		}
		words := strings.Fields(strings.TrimPrefix(line, cuePrefix))
		if len(words) == 0 {
			return fmt.Errorf("empty cue %q", line)
		}
		kv := map[string]int64{}
		for _, w := range words[1:] {
			k, v, ok := strings.Cut(w, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || err != nil {
				return fmt.Errorf("cue %q: bad word %q (want k=N)", line, w)
			}
			kv[k] = n
		}
		fn := verbs[words[0]]
		if fn == nil {
			fn = defaultVerbs[words[0]]
		}
		if fn == nil {
			return fmt.Errorf("unknown cue %q", line)
		}
		if err := fn(p, kv); err != nil {
			return fmt.Errorf("cue %q: %w", words[0], err)
		}
	}
}

func isVerdict(l, endPrefix string) bool {
	rest, ok := strings.CutPrefix(l, endPrefix)
	return ok && (rest == "ok" || strings.HasPrefix(rest, "FAIL"))
}

// dial connects to the port's socket; vmm bound it before booting.
func (p *peer) dial() error {
	if p.conn != nil {
		return errors.New("already connected")
	}
	c, err := net.DialTimeout("unix", p.sock, 10*time.Second)
	if err != nil {
		return err
	}
	// Nothing here may hang the test: a stuck guest fails the case.
	c.SetDeadline(time.Now().Add(4 * time.Minute)) // host_file_send takes 20-40 s here
	p.conn = c
	return nil
}

func (p *peer) hangUp() error {
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn = nil
	return err
}

// sendFile connects, streams the file and hangs up, as `cat file >
// socket` would.
func (p *peer) sendFile(path string) error {
	if err := p.dial(); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(p.conn, f); err != nil {
		return fmt.Errorf("send %s: %w", path, err)
	}
	return p.hangUp()
}

// receiveFile connects, stores n bytes in path, acks, and compares the
// file's sha256 with the one the guest printed.
func (p *peer) receiveFile(path string, n int64) error {
	if err := p.dial(); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if got, err := io.CopyN(f, p.conn, n); err != nil {
		return fmt.Errorf("received %d of %d bytes: %w", got, n, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := p.checkSHA(n, sha256.Sum256(b)); err != nil {
		return err
	}
	_, err = p.conn.Write([]byte{ackByte})
	return err
}

// checkSHA compares the guest's "vmm-init: sha256 NAME bytes=N HEX"
// line with what the host sent or received.
func (p *peer) checkSHA(n int64, sum [32]byte) error {
	prefix := "vmm-init: sha256 " + p.name + " "
	_, line, err := p.vm.next(0, func(l string) bool {
		return strings.HasPrefix(l, prefix) || isVerdict(l, "vmm-init: case "+p.name+" ")
	})
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, prefix) {
		return fmt.Errorf("the guest printed no sha256 line before its verdict %q", line)
	}
	want := fmt.Sprintf("bytes=%d %s", n, hex.EncodeToString(sum[:]))
	if got := strings.TrimPrefix(line, prefix); !strings.HasPrefix(got, want+" ") {
		return fmt.Errorf("guest sha256: got %q; want %q (the host's)", got, want)
	}
	return nil
}

// lineVM is a vmm process whose stdout (the guest console) is read line
// by line as it comes, so the test can react to what the guest prints.
type lineVM struct {
	start  time.Time
	stderr syncBuffer

	mu    sync.Mutex
	lines []string      // guarded by mu
	at    []time.Time   // guarded by mu; when each line arrived
	eof   bool          // guarded by mu
	wake  chan struct{} // guarded by mu; closed when lines or eof change

	exited   chan struct{} // closed once status and timedOut are set
	status   int
	timedOut bool
}

// startLineVM starts `vmm run ARGS…` with a timeout after which it is
// killed; the test's cleanup kills it too.
func startLineVM(t *testing.T, timeout time.Duration, args ...string) *lineVM {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, vmmBinary(t), append([]string{"run"}, args...)...)
	v := &lineVM{start: time.Now(), wake: make(chan struct{}), exited: make(chan struct{})}
	cmd.Stderr = &v.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start vmm: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			v.add(strings.TrimRight(sc.Text(), "\r"))
		}
		v.mu.Lock()
		v.eof = true
		close(v.wake)
		v.mu.Unlock()
		err := cmd.Wait() // only after every read from the pipe
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			v.timedOut = true
		case errors.As(err, &ee):
			v.status = ee.ExitCode()
		case err != nil:
			v.status = -1
		}
		close(v.exited)
	}()
	t.Cleanup(func() { cancel(); <-v.exited })
	return v
}

func (v *lineVM) add(l string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lines = append(v.lines, l)
	v.at = append(v.at, time.Now())
	close(v.wake)
	v.wake = make(chan struct{})
}

// next waits for the first line at index from or later that match
// accepts, and returns its index; it fails once the output has ended.
func (v *lineVM) next(from int, match func(string) bool) (int, string, error) {
	for {
		v.mu.Lock()
		for i := from; i < len(v.lines); i++ {
			if match(v.lines[i]) {
				l := v.lines[i]
				v.mu.Unlock()
				return i, l, nil
			}
		}
		from = len(v.lines)
		eof, wake := v.eof, v.wake
		v.mu.Unlock()
		if eof {
			return 0, "", errors.New("the VM's output ended before the line we waited for")
		}
		<-wake
	}
}

// wait waits for vmm to end.
func (v *lineVM) wait() (status int, timedOut bool) {
	<-v.exited
	return v.status, v.timedOut
}

// output is the console so far.
func (v *lineVM) output() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.lines, "\n")
}

// verdict returns what follows "vmm-init: case NAME " on its verdict
// line ("ok", "FAIL …" or "" if none) and the time from the case's
// start line to it.
func (v *lineVM) verdict(name string) (string, time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	prefix := "vmm-init: case " + name + " "
	var started time.Time
	for i, l := range v.lines {
		if l == prefix+"start" {
			started = v.at[i]
		}
		if isVerdict(l, prefix) {
			return strings.TrimPrefix(l, prefix), v.at[i].Sub(started)
		}
	}
	return "", 0
}

// linesWith returns the lines that begin with one of the prefixes.
func (v *lineVM) linesWith(prefixes ...string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, l := range v.lines {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// firstCase is the time from vmm's start to the first case's start.
func (v *lineVM) firstCase() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, l := range v.lines {
		if strings.HasPrefix(l, "vmm-init: case ") && strings.HasSuffix(l, " start") {
			return v.at[i].Sub(v.start)
		}
	}
	return 0
}
