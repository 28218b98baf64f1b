package tests

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// agentPort is the port name qemu-ga looks for (QEMU's convention).
const agentPort = "org.qemu.guest_agent.0"

// vmmAgentCmd is vmm booting g with a virtio-serial device whose port
// agentPort is a unix socket server at sock.
func vmmAgentCmd(t *testing.T, g shellGuest, sock string) *exec.Cmd {
	return exec.Command(vmmBinary(t), g.vmmArgs(g.Cmdline,
		"-device", g.transport(),
		"-chardev", "socket,id=qga,path="+sock+",server=on,wait=off",
		"-device", "virtserialport,chardev=qga,name="+agentPort)...)
}

// qemuAgentCmd is the same under QEMU (microvm without ACPI, as the test
// kernel needs). -no-reboot: the test kernel has no power-off method, so
// the guest ends the VM by a reboot (triple fault).
func qemuAgentCmd(t *testing.T, g shellGuest, sock string) *exec.Cmd {
	args := qemuArgs("1", g.Kernel, g.Cmdline)
	for i := range args[:len(args)-1] {
		if args[i] == "-m" {
			args[i+1] = g.mem()
		}
	}
	args = append(args, "-initrd", g.Initrd, "-no-reboot",
		"-device", "virtio-serial-device",
		"-chardev", "socket,id=qga,path="+sock+",server=on,wait=off",
		"-device", "virtserialport,chardev=qga,name="+agentPort)
	return exec.Command(qemuBinary(t), args...)
}

// TestGuestAgent boots the Linux test kernel with the shell initramfs,
// whose init starts Debian's qemu-ga on a virtio-serial port, and speaks
// the guest agent protocol to it from the host over vmm's unix socket
// chardev — then does the same under QEMU with its own virtio-serial
// device. See guestAgentSession for what is checked.
func TestGuestAgent(t *testing.T) {
	needKVM(t)
	g := testKernelShell(t, "test-agent")
	// 256 KiB is still four guest-file-write chunks; the test kernel
	// moves ~0.1 MiB/s through qemu-ga here (its kernel mode emulated),
	// so 2 MiB cost ~40 s. TestStockAgent moves 2 MiB.
	g.FileSize = 256 << 10
	// In parallel: boots take long here, and both see the same host load.
	t.Run("vmm", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(t.TempDir(), "qga.sock")
		guestAgentSession(t, vmmAgentCmd(t, g, sock), sock, g)
	})
	t.Run("qemu", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(t.TempDir(), "qga.sock")
		guestAgentSession(t, qemuAgentCmd(t, g, sock), sock, g)
	})
}

// guestAgentSession starts vm (not yet started; its guest runs a tests/stock
// shell initramfs with qemu-ga on a port whose host side is the unix
// socket server sock) and, once the init is ready: guest-sync-delimited
// with a random id; guest-ping; guest-info listing the commands used here
// as enabled; a g.FileSize file written with guest-file-write and read
// back with guest-file-read in base64 chunks, its sha256 checked on both
// sides; guest-exec with captured stdout, stderr and exit code; and
// guest-shutdown, after which vm must end with status 0.
func guestAgentSession(t *testing.T, vm *exec.Cmd, sock string, g shellGuest) {
	t.Helper()
	p := startVM(t, vm)
	con := &p.con
	start := time.Now()
	c := dialVM(t, p, sock, g.step())
	defer c.Close()
	qga := newAgent(c)

	ready := waitConsole(t, p, "vmm-shell: ready", g.boot())
	t.Logf("boot to ready line: %v", ready.Round(time.Millisecond))
	if !strings.Contains(con.String(), "vmm-shell: qemu-ga started") {
		t.Fatalf("the init did not start qemu-ga\n%s", con)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nconsole:\n%s", append(args, con)...)
	}

	// Sync first: it also flushes whatever a previous client left behind.
	id := mrand.Int64N(1 << 50)
	syncStart := time.Now()
	if err := qga.sync(id, g.boot()); err != nil {
		fail("guest-sync-delimited: %v", err)
	}
	t.Logf("agent answering %v after launch (sync took %v)", time.Since(start).Round(time.Millisecond),
		time.Since(syncStart).Round(time.Millisecond))

	if err := qga.call("guest-ping", nil, nil, g.step()); err != nil {
		fail("guest-ping: %v", err)
	}

	var info struct {
		Version  string `json:"version"`
		Commands []struct {
			Name    string `json:"name"`
			Enabled bool   `json:"enabled"`
		} `json:"supported_commands"`
	}
	if err := qga.call("guest-info", nil, &info, g.step()); err != nil {
		fail("guest-info: %v", err)
	}
	enabled := map[string]bool{}
	for _, c := range info.Commands {
		enabled[c.Name] = c.Enabled
	}
	for _, name := range []string{"guest-sync-delimited", "guest-ping", "guest-file-open", "guest-file-write",
		"guest-file-read", "guest-file-close", "guest-exec", "guest-exec-status", "guest-shutdown"} {
		if !enabled[name] {
			t.Errorf("guest-info: %s not listed as enabled (version %q, %d commands)", name, info.Version, len(info.Commands))
		}
	}
	t.Logf("qemu-ga %s, %d commands", info.Version, len(info.Commands))

	agentFileRoundTrip(t, qga, g, fail)

	// guest-exec with captured output and a non-zero exit code.
	var pid struct {
		PID int `json:"pid"`
	}
	err := qga.call("guest-exec", map[string]any{"path": "/bin/sh",
		"arg": []string{"-c", "echo out-$((6*7)); echo err-line >&2; exit 3"}, "capture-output": true}, &pid, g.step())
	if err != nil {
		fail("guest-exec: %v", err)
	}
	st := execStatus(t, qga, pid.PID, g, fail)
	if st.ExitCode != 3 || st.out != "out-42\n" || st.err != "err-line\n" {
		t.Errorf("guest-exec status = exitcode %d, out %q, err %q; want 3, %q, %q", st.ExitCode, st.out, st.err, "out-42\n", "err-line\n")
	}

	// guest-shutdown has no reply on success: the VM just ends.
	if err := qga.send("guest-shutdown", nil); err != nil {
		fail("guest-shutdown: %v", err)
	}
	shut := time.Now()
	select {
	case <-p.done:
		if p.status() != 0 {
			fail("exit status after guest-shutdown = %d (%v); want 0", p.status(), p.err)
		}
	case <-time.After(g.step()):
		fail("the VM did not end within %v of guest-shutdown", g.step())
	}
	if !strings.Contains(con.String(), "vmm-shell: poweroff") {
		t.Errorf("console lacks the init's poweroff line\n%s", con)
	}
	t.Logf("guest-shutdown to exit: %v; whole session %v", time.Since(shut).Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond))
}

// agentFileRoundTrip writes g.FileSize random bytes into a guest file
// with guest-file-write, reads them back with guest-file-read (in
// chunks of a quarter of the file, at most 1 MiB, base64 both ways) and
// checks the sha256, also as sha256sum in the guest computes it.
func agentFileRoundTrip(t *testing.T, qga *agent, g shellGuest, fail func(string, ...any)) {
	t.Helper()
	const path = "/tmp/qga-roundtrip.bin"
	size := cmp.Or(g.FileSize, 2<<20)
	chunk := min(1<<20, max(size/4, 1))
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)

	open := func(mode string) int {
		var h int
		if err := qga.call("guest-file-open", map[string]any{"path": path, "mode": mode}, &h, g.step()); err != nil {
			fail("guest-file-open %s %s: %v", path, mode, err)
		}
		return h
	}
	closeFile := func(h int) {
		if err := qga.call("guest-file-close", map[string]any{"handle": h}, nil, g.step()); err != nil {
			fail("guest-file-close: %v", err)
		}
	}

	begin := time.Now()
	h := open("w")
	for off := 0; off < size; off += chunk {
		part := data[off:min(off+chunk, size)]
		var w struct {
			Count int `json:"count"`
		}
		err := qga.call("guest-file-write", map[string]any{"handle": h, "buf-b64": base64.StdEncoding.EncodeToString(part)}, &w, g.step())
		if err != nil {
			fail("guest-file-write at %d: %v", off, err)
		}
		if w.Count != len(part) {
			fail("guest-file-write at %d: count %d; want %d", off, w.Count, len(part))
		}
	}
	closeFile(h)
	wrote := time.Since(begin)

	begin = time.Now()
	h = open("r")
	var got []byte
	for {
		var r struct {
			Count int    `json:"count"`
			Buf   string `json:"buf-b64"`
			EOF   bool   `json:"eof"`
		}
		if err := qga.call("guest-file-read", map[string]any{"handle": h, "count": chunk}, &r, g.step()); err != nil {
			fail("guest-file-read at %d: %v", len(got), err)
		}
		b, err := base64.StdEncoding.DecodeString(r.Buf)
		if err != nil || len(b) != r.Count {
			fail("guest-file-read at %d: %d bytes of base64 (%v); count %d", len(got), len(b), err, r.Count)
		}
		got = append(got, b...)
		if r.EOF || r.Count == 0 {
			break
		}
		if len(got) > size {
			fail("guest-file-read: more than the %d bytes written", size)
		}
	}
	closeFile(h)
	read := time.Since(begin)
	if sum := sha256.Sum256(got); sum != want {
		t.Errorf("read back %d bytes with sha256 %x; wrote %d with %x", len(got), sum, size, want)
	}
	mib := float64(size) / (1 << 20)
	t.Logf("file round trip %.2f MiB: write %v (%.2f MiB/s), read %v (%.2f MiB/s)", mib,
		wrote.Round(time.Millisecond), mib/wrote.Seconds(), read.Round(time.Millisecond), mib/read.Seconds())

	// The guest's own view of the file.
	var pid struct {
		PID int `json:"pid"`
	}
	err := qga.call("guest-exec", map[string]any{"path": "sha256sum", "arg": []string{path}, "capture-output": true}, &pid, g.step())
	if err != nil {
		fail("guest-exec sha256sum: %v", err)
	}
	st := execStatus(t, qga, pid.PID, g, fail)
	if f := strings.Fields(st.out); st.ExitCode != 0 || len(f) == 0 || f[0] != hex.EncodeToString(want[:]) {
		t.Errorf("guest sha256sum %s = exit %d, %q (stderr %q); want %x", path, st.ExitCode, st.out, st.err, want)
	}
}

// execResult is a finished guest-exec-status, its output decoded.
type execResult struct {
	Exited   bool   `json:"exited"`
	ExitCode int    `json:"exitcode"`
	Signal   int    `json:"signal"`
	OutData  string `json:"out-data"`
	ErrData  string `json:"err-data"`
	out, err string
}

// execStatus polls guest-exec-status for pid until the process exited.
func execStatus(t *testing.T, qga *agent, pid int, g shellGuest, fail func(string, ...any)) execResult {
	t.Helper()
	deadline := time.Now().Add(g.step())
	for {
		var st execResult
		if err := qga.call("guest-exec-status", map[string]any{"pid": pid}, &st, g.step()); err != nil {
			fail("guest-exec-status %d: %v", pid, err)
		}
		if st.Exited {
			out, err1 := base64.StdEncoding.DecodeString(st.OutData)
			errb, err2 := base64.StdEncoding.DecodeString(st.ErrData)
			if err1 != nil || err2 != nil {
				fail("guest-exec-status %d: bad base64 (%v, %v)", pid, err1, err2)
			}
			st.out, st.err = string(out), string(errb)
			return st
		}
		if time.Now().After(deadline) {
			fail("guest-exec pid %d still running after %v", pid, g.step())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agent is the host end of a QGA connection: JSON commands out, and
// newline-terminated JSON replies in, read by one goroutine into a
// channel so each request can have its own deadline.
type agent struct {
	c    net.Conn
	in   chan []byte
	rerr chan error // the reader's final error
	buf  []byte     // received, not yet consumed
}

func newAgent(c net.Conn) *agent {
	a := &agent{c: c, in: make(chan []byte, 64), rerr: make(chan error, 1)}
	go func() {
		for {
			b := make([]byte, 256<<10)
			n, err := c.Read(b)
			if n > 0 {
				a.in <- b[:n]
			}
			if err != nil {
				a.rerr <- err
				close(a.in)
				return
			}
		}
	}()
	return a
}

// fill waits until buf holds more bytes, or the deadline.
func (a *agent) fill(deadline time.Time) error {
	select {
	case b, ok := <-a.in:
		if !ok {
			return fmt.Errorf("connection closed: %w", <-a.rerr)
		}
		a.buf = append(a.buf, b...)
		return nil
	case <-time.After(time.Until(deadline)):
		return errors.New("timed out waiting for the agent")
	}
}

// line returns the next newline-terminated message.
func (a *agent) line(deadline time.Time) ([]byte, error) {
	for {
		if i := bytes.IndexByte(a.buf, '\n'); i >= 0 {
			l := a.buf[:i]
			a.buf = a.buf[i+1:]
			return l, nil
		}
		if err := a.fill(deadline); err != nil {
			return nil, err
		}
	}
}

// send writes one command.
func (a *agent) send(cmd string, args any) error {
	m := map[string]any{"execute": cmd}
	if args != nil {
		m["arguments"] = args
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	a.c.SetWriteDeadline(time.Now().Add(time.Minute))
	_, err = a.c.Write(b)
	return err
}

// sync runs guest-sync-delimited: a 0xFF first resets the agent's JSON
// parser (the agent answers it with an error), and the agent puts a 0xFF
// before its reply, so everything before that (a stale reply, that
// error) is skipped. It is sent once: what the host writes waits in the
// socket until the agent opens its port, and none of it is lost.
func (a *agent) sync(id int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if _, err := a.c.Write([]byte{0xff}); err != nil {
		return err
	}
	if err := a.send("guest-sync-delimited", map[string]any{"id": id}); err != nil {
		return err
	}
	for {
		i := bytes.IndexByte(a.buf, 0xff)
		if i < 0 {
			a.buf = a.buf[:0]
			if err := a.fill(deadline); err != nil {
				return fmt.Errorf("no reply with id %d: %w", id, err)
			}
			continue
		}
		a.buf = a.buf[i+1:]
		l, err := a.line(deadline)
		if err != nil {
			return fmt.Errorf("no reply with id %d: %w", id, err)
		}
		var r struct {
			Return int64 `json:"return"`
		}
		if json.Unmarshal(l, &r) == nil && r.Return == id {
			return nil
		}
	}
}

// call sends a command and decodes its reply's "return" into result
// (if not nil); a reply with "error" is returned as an error.
func (a *agent) call(cmd string, args, result any, timeout time.Duration) error {
	if err := a.send(cmd, args); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		l, err := a.line(deadline)
		if err != nil {
			return err
		}
		l = bytes.Trim(l, "\xff\r ")
		if len(l) == 0 {
			continue
		}
		var r struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			return fmt.Errorf("reply %.200q: %w", l, err)
		}
		if r.Error != nil {
			return fmt.Errorf("%s: %s", r.Error.Class, r.Error.Desc)
		}
		if r.Return == nil {
			return fmt.Errorf("reply %.200q has no return", l)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(r.Return, result)
	}
}
