package nested

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Command is what to run in the outer machine.
type Command struct {
	Args    []string // the program and its arguments, at host paths
	Env     []string // NAME=VALUE added to a minimal environment
	Dir     string   // working directory (a host path); default /
	CPUs    int      // L1's vCPUs (TCG threads); default 2
	MemMiB  int      // L1's RAM; default 4096
	Timeout time.Duration
	// Console receives the outer machine's console as it runs: the
	// command's stdout and stderr, and L1's own few lines.
	Console io.Writer
	// Stdin, if set, is the console's input (e.g. the terminal, for a
	// shell in a guest by hand): the command reads L1's console. QEMU
	// puts a terminal in raw mode, so keys such as vmm's Ctrl-A x reach
	// the command. Without it the command's stdin is /dev/null.
	Stdin *os.File
	// OnHeartbeat, if set, is called for each heartbeat L1 prints while
	// the command runs (the heartbeat never reaches Console).
	OnHeartbeat func()
}

// Run boots the outer machine, runs c there and returns the command's
// exit status. An error means the rig itself failed (QEMU could not
// start, the outer machine crashed or timed out, no /dev/kvm): the
// command's verdict is then unknown.
func (r *Rig) Run(ctx context.Context, c Command) (int, error) {
	if c.CPUs == 0 {
		c.CPUs = 2
	}
	if c.MemMiB == 0 {
		c.MemMiB = 4096
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Minute
	}
	if c.Dir == "" {
		c.Dir = "/"
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return 0, fmt.Errorf("the nested rig needs QEMU: %w", err)
	}
	out, err := os.MkdirTemp(r.RunRoot, "run-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(out)
	// L1 mounts the run folder at its host path under the host's root:
	// a symlink on the way (a build folder linked elsewhere) would point
	// outside that root there.
	if out, err = filepath.EvalSymlinks(out); err != nil {
		return 0, err
	}
	if err := r.stage(out, &c); err != nil {
		return 0, err
	}

	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	ctx, hang := context.WithCancelCause(ctx)
	defer hang(nil)
	console := &tail{max: 64 << 10}
	watch := &lockupWatch{hung: func() { hang(ErrOuterHung) }}
	var w io.Writer = io.MultiWriter(console, watch)
	if c.Console != nil {
		w = io.MultiWriter(console, watch, c.Console)
	}
	beat := newHeartbeat(w, c.OnHeartbeat)
	defer beat.flush()
	go watchSilence(ctx, beat, silenceLimit, func() { hang(ErrOuterSilent) })
	q := exec.CommandContext(ctx, qemu,
		"-accel", "tcg,thread=multi", "-cpu", "max",
		"-smp", strconv.Itoa(c.CPUs), "-m", strconv.Itoa(c.MemMiB)+"M",
		"-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
		"-serial", "stdio",
		"-kernel", r.Kernel, "-initrd", r.Initrd,
		"-virtfs", "local,path=/,mount_tag=host,security_model=passthrough,multidevs=remap,readonly=on,id=host",
		"-virtfs", "local,path="+out+",mount_tag=out,security_model=passthrough,id=out",
		"-append", "console=ttyS0 quiet panic=-1 nested.out="+out,
	)
	// One writer for both: exec copies each through its own goroutine.
	both := &crlf{w: beat}
	q.Stdout, q.Stderr = both, both
	if c.Stdin != nil {
		// A terminal in raw mode needs its carriage returns.
		both.keepCR = true
		q.Stdin = c.Stdin
	}
	start := time.Now()
	err = q.Run()
	both.flush()
	took := time.Since(start).Round(time.Second)
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrOuterHung):
		return 0, fmt.Errorf("%w for %ds or more (stopped after %v); its console ended:\n%s", ErrOuterHung, lockupLimit, took, console)
	case errors.Is(cause, ErrOuterSilent):
		return 0, fmt.Errorf("%w for %v (stopped after %v); its console ended:\n%s", ErrOuterSilent, silenceLimit, took, console)
	case ctx.Err() != nil:
		return 0, fmt.Errorf("%w after %v; its console ended:\n%s", ErrOuterTimeout, took, console)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w; its console ended:\n%s", qemu, err, console)
	}
	if kvmMissing(console.String()) {
		return 0, fmt.Errorf("the outer machine has no /dev/kvm (kvm_amd did not load); its console ended:\n%s", console)
	}
	b, err := os.ReadFile(filepath.Join(out, "status"))
	if err != nil {
		if strings.Contains(console.String(), "Kernel panic - not syncing") {
			return 0, fmt.Errorf("%w; its console ended:\n%s", ErrOuterCrashed, console)
		}
		return 0, fmt.Errorf("%w; its console ended:\n%s", errNoStatus, console)
	}
	status, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("bad status %q from the outer machine", b)
	}
	return status, nil
}

// watchSilence calls silent once the console has said nothing, not
// even the heartbeat, for limit; it returns when ctx ends.
func watchSilence(ctx context.Context, beat *heartbeat, limit time.Duration, silent func()) {
	t := time.NewTicker(limit / 36)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if beat.silentFor() > limit {
				silent()
				return
			}
		}
	}
}

// stage writes cmd.sh into the run folder, which L1's init runs
// chrooted at the host's root.
func (r *Rig) stage(out string, c *Command) error {
	var sh strings.Builder
	sh.WriteString("# written by the nested rig (tests/nested); run chrooted in the outer machine\n")
	env := append([]string{
		"HOME=/root",
		"PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"TMPDIR=/mnt",
		EnvInside + "=1",
	}, c.Env...)
	for _, e := range env {
		fmt.Fprintf(&sh, "export %s\n", shellQuote(e))
	}
	if c.Stdin == nil {
		// The heartbeat shows that L1 still runs its own user space; a
		// terminal (Stdin) would show it to the person typing.
		fmt.Fprintf(&sh, "(while sleep %d; do echo %s; done) &\n", int(heartbeatEvery.Seconds()), shellQuote(heartbeatLine))
	}
	fmt.Fprintf(&sh, "cd %s || exit 125\nexec", shellQuote(c.Dir))
	for _, a := range c.Args {
		fmt.Fprintf(&sh, " %s", shellQuote(a))
	}
	if c.Stdin == nil {
		sh.WriteString(" </dev/null")
	}
	sh.WriteString("\n")
	return os.WriteFile(filepath.Join(out, "cmd.sh"), []byte(sh.String()), 0o644)
}

// shellQuote quotes s for sh: one word, nothing expanded.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// crlf drops the carriage returns that L1's tty adds before newlines,
// and serialises writes from QEMU's stdout and stderr. A CR at the end
// of one write waits for the next: its newline may come there.
type crlf struct {
	keepCR bool
	mu     sync.Mutex
	w      io.Writer // guarded by mu
	cr     bool      // the last write ended in a CR not passed on yet; guarded by mu
}

func (c *crlf) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keepCR {
		if _, err := c.w.Write(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	s := string(p)
	if c.cr {
		s = "\r" + s
	}
	c.cr = strings.HasSuffix(s, "\r")
	s = strings.ReplaceAll(strings.TrimSuffix(s, "\r"), "\r\n", "\n")
	if _, err := c.w.Write([]byte(s)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush passes on a CR still held, once the console has ended.
func (c *crlf) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cr {
		c.w.Write([]byte("\r"))
		c.cr = false
	}
}

// tail keeps the last max bytes written to it; QEMU's stdout and
// stderr are copied into it from two goroutines.
type tail struct {
	max int
	mu  sync.Mutex
	b   []byte // guarded by mu
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
