package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"
)

// -daemonize, as QEMU's: vmm detaches from the terminal once the VM is
// set up, and the command that started it returns then — 0 if the VM
// came up, else the status and message it would have given in the
// foreground. Go cannot fork, so vmm starts itself again in a new
// session with daemonReadyEnv naming a pipe; the child sets up the VM
// with the parent's stdout and stderr (its errors reach the user), then
// reports through the pipe, moves stdin, stdout and stderr to /dev/null
// and runs on. -pidfile then names the child.

// daemonReadyEnv names the child's end of the readiness pipe (an fd).
const daemonReadyEnv = "VMM_DAEMON_READY_FD"

// daemonized is the readiness pipe in a child started by -daemonize;
// nil otherwise.
var daemonized *os.File

// daemonChild reports whether this process is the child -daemonize
// started, and takes its pipe.
func daemonChild() bool {
	v := os.Getenv(daemonReadyEnv)
	if v == "" {
		return false
	}
	os.Unsetenv(daemonReadyEnv) // not for anything vmm starts
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return false
	}
	daemonized = os.NewFile(uintptr(fd), "daemonize")
	return true
}

// daemonize starts vmm again with args, detached, and waits until it
// says the VM is up (status 0) or ends (its status).
func daemonize(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm: -daemonize: %v\n", err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm: -daemonize: %v\n", err)
		return 1
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm: -daemonize: %v\n", err)
		return 1
	}
	defer devnull.Close()
	cmd := exec.Command(self, append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(), daemonReadyEnv+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "vmm: -daemonize: %v\n", err)
		return 1
	}
	w.Close()
	var b [1]byte
	n, _ := io.ReadFull(r, b[:])
	r.Close()
	if n == 1 {
		cmd.Process.Release()
		return 0
	}
	// The child ended before the VM came up: its own message is out.
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() >= 0 {
			return ee.ExitCode()
		}
		return 1
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm: -daemonize: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "vmm: -daemonize: vmm ended with status 0 before the VM was up\n")
	return 1
}

// daemonReady, in a child of -daemonize, tells the parent the VM is up
// and leaves the terminal: stdin, stdout and stderr become /dev/null.
// Elsewhere it does nothing.
func daemonReady() {
	if daemonized == nil {
		return
	}
	if devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for _, fd := range []int{0, 1, 2} {
			unix.Dup3(int(devnull.Fd()), fd, 0)
		}
		devnull.Close()
	}
	daemonized.Write([]byte{1})
	daemonized.Close()
	daemonized = nil
}
