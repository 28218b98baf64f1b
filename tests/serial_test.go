package tests

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSerialInputAndQuit: host input on stdin reaches the guest through
// COM1, and Ctrl-A x ends a guest that would otherwise run for minutes.
func TestSerialInputAndQuit(t *testing.T) {
	needKVM(t)
	cmd := exec.Command(vmmBinary(t), "run", "-kernel", guestELF(t),
		"-append", "serial 5; echo looping; loop 10000000000000; exit 9")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		t.Helper()
		for lines.Scan() {
			if strings.TrimSpace(lines.Text()) == want {
				return
			}
		}
		t.Fatalf("guest never printed %q (stderr %q)", want, stderr.String())
	}
	// The guest resets its FIFO when it starts; type after it is up.
	expect("guest: hello")
	// Six bytes typed, five arrive: Ctrl-A Ctrl-A sends one Ctrl-A.
	io.WriteString(stdin, "h\x01\x01i!?")
	expect("guest: serial got \"h\x01i!?\"")
	expect("looping")
	io.WriteString(stdin, "\x01x")
	go io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if err != nil {
		t.Fatalf("vmm after Ctrl-A x: %v; want exit status 0 (stderr %q)", err, stderr.String())
	}
}
