// Package tests holds the end-to-end tests: the vmm binary booting the
// test guest (and later Linux) on the real /dev/kvm, and QEMU booting the
// same guest in the same run for comparison.
package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"vmm/kvm"
)

var (
	buildOnce sync.Once
	builtVMM  string
	buildErr  error
)

// repoRoot is the checkout this test file lives in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// vmmBinary returns the vmm binary: $VMM_BIN (set by make test), or one
// built into a temporary folder for a plain `go test`.
func vmmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VMM_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vmm-e2e")
		if err != nil {
			buildErr = err
			return
		}
		builtVMM = filepath.Join(dir, "vmm")
		cmd := exec.Command("go", "build", "-o", builtVMM, "./cmd/vmm")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/vmm: %v", buildErr)
	}
	return builtVMM
}

// guestELF returns the test guest; make builds it before the tests run.
func guestELF(t *testing.T) string {
	t.Helper()
	p := os.Getenv("VMM_GUEST")
	if p == "" {
		p = filepath.Join(repoRoot(), "tests/guest/build/guest.elf")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test guest missing (%v): run `make guest` (make test does)", err)
	}
	return p
}

// needKVM skips a test on a machine without a usable /dev/kvm.
func needKVM(t *testing.T) {
	t.Helper()
	if err := kvm.Available(); err != nil {
		t.Skipf("no usable /dev/kvm: %v", err)
	}
}

// result is one finished process.
type result struct {
	stdout, stderr string
	status         int
	elapsed        time.Duration
	err            error // from runNoFatal: it did not start, or timed out
}

// runNoFatal is run for goroutines (which must not call t.Fatal): a
// start failure or a timeout comes back in result.err.
func runNoFatal(timeout time.Duration, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runCtx(ctx, timeout, name, args...)
}

// runNoFatalDiag is runNoFatal that, when the command times out, looks
// at it before it goes (stuck below), passes what it saw to report at
// once (a test's live log) and adds it to result.err.
func runNoFatalDiag(timeout time.Duration, diag func() string, report func(string), name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runCtxDiag(ctx, timeout, diag, report, name, args...)
}

// runCtx runs a command until it ends or ctx is done (then it is
// killed and result.err says so).
func runCtx(ctx context.Context, timeout time.Duration, name string, args ...string) result {
	return runCtxDiag(ctx, timeout, nil, nil, name, args...)
}

func runCtxDiag(ctx context.Context, timeout time.Duration, diag func() string, report func(string), name string, args ...string) result {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	var seen atomic.Pointer[string]
	if diag != nil {
		cmd.Cancel = func() error {
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return cmd.Process.Kill()
			}
			s := stuck(cmd.Process, diag, &errb)
			seen.Store(&s)
			if report != nil {
				report(s)
			}
			return cmd.Process.Kill()
		}
		cmd.WaitDelay = 5 * time.Second
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{err: err}
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		// The diagnosis above takes up to ~25 s; a process SIGKILL does
		// not end (stuck in the kernel) is left behind after a minute.
		select {
		case err = <-waited:
		case <-time.After(time.Minute):
			err = errUnkillable
		}
	}
	r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && seen.Load() != nil:
		r.err = fmt.Errorf("%s: timed out after %v (%v); before it was killed:\n%s", name, timeout, err, *seen.Load())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.err = fmt.Errorf("%s: timed out after %v", name, timeout)
	case ctx.Err() != nil:
		r.err = fmt.Errorf("%s: killed at the end of the test", name)
	case errors.As(err, &ee):
		r.status = ee.ExitCode()
	case err != nil:
		r.err = err
	}
	return r
}

// errUnkillable: the process outlived SIGKILL by a minute.
var errUnkillable = errors.New("still there a minute after SIGKILL (stuck in the kernel)")

// stuck describes a process that outlived its bound: what diag says
// (e.g. a VM's state through QMP), each thread's state, kernel wait
// channel and kernel stack (a vCPU thread stuck in KVM shows there),
// and what a Go program (vmm) prints of its goroutines on SIGQUIT.
func stuck(p *os.Process, diag func() string, stderr *syncBuffer) string {
	var b strings.Builder
	b.WriteString(diag())
	b.WriteString("\n")
	b.WriteString(threadStates(p.Pid))
	before := len(stderr.String())
	p.Signal(syscall.SIGQUIT)
	time.Sleep(3 * time.Second)
	fmt.Fprintf(&b, "stderr after SIGQUIT:\n%s\n", stderr.String()[before:])
	return b.String()
}

// threadStates lists /proc/PID/task/*: state, wchan and kernel stack
// (readable as root, as in the nested rig).
func threadStates(pid int) string {
	var b strings.Builder
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, task := range tasks {
		stat, _ := os.ReadFile(filepath.Join(task, "stat"))
		state := "?"
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
			state = string(stat[i+2])
		}
		comm, _ := os.ReadFile(filepath.Join(task, "comm"))
		wchan, _ := os.ReadFile(filepath.Join(task, "wchan"))
		fmt.Fprintf(&b, "thread %s (%s): state %s, wchan %s\n", filepath.Base(task), strings.TrimSpace(string(comm)), state, wchan)
		if state == "D" || state == "R" {
			stack, err := os.ReadFile(filepath.Join(task, "stack"))
			if err != nil {
				fmt.Fprintf(&b, "  stack: %v\n", err)
			} else {
				fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(strings.TrimSpace(string(stack)), "\n", "\n  "))
			}
		}
	}
	return b.String()
}

// run starts a command with no stdin and a timeout, and collects it.
func run(t *testing.T, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	r := runNoFatal(timeout, name, args...)
	if r.err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, r.err, r.stdout, r.stderr)
	}
	return r
}

// startRun runs name ARGS… (vmm or QEMU) in the background with a
// timeout and returns a channel that receives its result once. It never
// fails the test (a timeout or start failure is in result.err), so
// goroutines may use it, and the process is killed when the test ends.
func startRun(t *testing.T, timeout time.Duration, name string, args ...string) <-chan result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	done := make(chan result, 1)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		done <- runCtx(ctx, timeout, name, args...)
	}()
	t.Cleanup(func() { cancel(); <-ended })
	return done
}

// vmEnded waits for a startRun result on the test's goroutine and fails
// the test if the VM did not run to its end.
func vmEnded(t *testing.T, done <-chan result) result {
	t.Helper()
	r := <-done
	if r.err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", r.err, withoutHeartbeats(r.stdout), r.stderr)
	}
	return r
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runVMM runs `vmm run ARGS…`.
func runVMM(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, 2*time.Minute, vmmBinary(t), append([]string{"run"}, args...)...)
}

// qemuBinary returns qemu-system-x86_64, or skips where it is absent
// (make test installs it, so in CI it is always there).
func qemuBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("qemu-system-x86_64 not installed in CI: %v", err)
		}
		t.Skipf("qemu-system-x86_64 not installed: %v", err)
	}
	return p
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it
// (the one locked buffer of these tests).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPiped starts a command whose output the test reads as it runs;
// it is killed at the end of the test if still running.
func startPiped(t *testing.T, name string, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out, &errb
}
