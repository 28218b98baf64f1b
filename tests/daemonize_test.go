package tests

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDaemonize: `vmm run -daemonize` returns 0 once the VM is up, and
// its stdout and stderr reach end of file then (the VM's vmm no longer
// holds them, as a shell's $(…) or a CI step needs). -pidfile names that
// vmm: a live process in a session of its own, not the command's child.
// The VM runs on and answers QMP; quit ends it and removes the pidfile.
func TestDaemonize(t *testing.T) {
	needKVM(t)
	dir := t.TempDir()
	pidfile, sock := filepath.Join(dir, "vmm.pid"), filepath.Join(dir, "qmp.sock")
	cmd := exec.Command(vmmBinary(t), "run", "-daemonize", "-pidfile", pidfile,
		"-qmp", "unix:"+sock+",server=on,wait=off", "-kernel", guestELF(t), "-append", "serial 4")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second // a vmm that kept the pipes would hold Wait forever
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("vmm run -daemonize: %v (want status 0 and its output closed)\nstdout: %q\nstderr: %q", err, &out, &errb)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("vmm run -daemonize still running after a minute\nstderr: %q", &errb)
	}
	if out.Len() != 0 || errb.Len() != 0 {
		t.Errorf("output of vmm run -daemonize: stdout %q, stderr %q; want none", &out, &errb)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("pidfile: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("pidfile holds %q; want a pid", b)
	}
	t.Cleanup(func() { unix.Kill(pid, unix.SIGKILL) })
	if pid == cmd.Process.Pid {
		t.Errorf("pidfile names the command that returned (%d); want the VM's vmm", pid)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("getsid(%d) = %d, %v; want its own session", pid, sid, err)
	}

	c := connectQMP(t, sock)
	if s := c.runState(); s != "running" {
		t.Errorf("query-status = %q; want running", s)
	}
	c.must("quit", nil, nil)
	c.waitEvent("SHUTDOWN", 1, 10*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for unix.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("vmm %d still there 30 s after quit (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pidfile after quit: %v; want it removed", err)
	}
}

// TestDaemonizeFailures: what goes wrong before the VM is up is reported
// by the command itself, with the status the foreground run would give:
// a missing kernel (1), stdio that vmm would leave (2).
func TestDaemonizeFailures(t *testing.T) {
	needKVM(t)
	for _, tc := range []struct {
		args   []string
		status int
		msg    string
	}{
		{[]string{"-kernel", "/nonexistent/kernel", "-serial", "null"}, 1, "vmm: -kernel: open /nonexistent/kernel: no such file or directory"},
		{[]string{"-kernel", guestELF(t), "-serial", "stdio"}, 2, "vmm: -daemonize: -serial stdio would need the terminal vmm leaves"},
	} {
		r := runVMM(t, append([]string{"-daemonize"}, tc.args...)...)
		if r.status != tc.status || !strings.HasPrefix(r.stderr, tc.msg) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("vmm run -daemonize %q: status %d, stderr %q; want %d and one line starting %q", tc.args, r.status, r.stderr, tc.status, tc.msg)
		}
	}
}
