// Package soak is `vmm soak`: a long run of vmm with the test guest
// streaming a checkable pattern both ways on every virtio-serial port
// while a seeded chaos schedule disturbs the host peers, verifying
// every byte, the guest heartbeat, fairness between ports and the vmm
// process's memory and fds. See README.md.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config is one soak run.
type Config struct {
	VMM, Guest     string
	Ports          int
	Duration       time.Duration
	Schedule       *Schedule // nil: generated from Seed
	Seed           int64
	Out            string
	HeartbeatBound time.Duration
	Fairness       Fairness
	Flatness       Flatness
	Progress       io.Writer // one line a second; nil for none
}

// DefaultConfig is what `vmm soak` runs without flags.
func DefaultConfig() Config {
	return Config{
		Ports: 8, Duration: 60 * time.Second, Seed: 1, Out: "build/soak",
		Guest: "tests/guest/build/guest.elf", HeartbeatBound: time.Second,
		Fairness: Fairness{Ratio: 3, GraceS: 1, WarmupS: 5, MinWindows: 3},
		Flatness: Flatness{WarmupS: 5, BaselineS: 5, RSSSlackKiB: 8 << 10, FDSlack: 4},
	}
}

var ptyRE = regexp.MustCompile(`char device redirected to (\S+) \(label (\S+)\)`)

// Run runs the soak and writes the report files to cfg.Out. An error
// means the soak itself could not run; violations are in the report.
func Run(cfg Config) (*Report, error) {
	ports, err := Layout(cfg.Ports)
	if err != nil {
		return nil, err
	}
	sched := cfg.Schedule
	if sched == nil {
		sched = Generate(cfg.Seed, ports, cfg.Duration)
	} else if err := sched.Validate(ports); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	if r, w, err := os.Pipe(); err == nil { // start the runtime's poller before counting fds
		r.Close()
		w.Close()
	}
	fdsBefore := ownFDs()
	dir, err := os.MkdirTemp("", "vmm-soak")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	logf, err := os.Create(filepath.Join(cfg.Out, "events.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	e := &env{dir: dir, log: logf}

	args, err := vmmArgs(cfg, ports, sched, e)
	if err != nil {
		return nil, err
	}
	guestOut, err := os.Create(filepath.Join(cfg.Out, "guest.log"))
	if err != nil {
		return nil, err
	}
	defer guestOut.Close()
	vmmErr, err := os.Create(filepath.Join(cfg.Out, "vmm.stderr"))
	if err != nil {
		return nil, err
	}
	defer vmmErr.Close()

	cmd := exec.Command(cfg.VMM, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the soak
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.VMM, err)
	}
	started := time.Now()
	g := &guestLog{env: e, bound: cfg.HeartbeatBound, first: make(chan struct{})}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); g.scan(stdout, guestOut) }()
	ptyCh := make(chan string, 1)
	go func() { defer readers.Done(); scanStderr(stderr, vmmErr, ptyCh) }()
	exited := make(chan error, 1)
	go func() {
		readers.Wait()
		err := cmd.Wait()
		e.vmmGone.Store(true)
		exited <- err
	}()

	// Boot: wait for the pty's path and the first heartbeat.
	needPty := false
	for _, p := range ports {
		needPty = needPty || p.Backend == Pty
	}
	boot := time.After(2 * time.Minute)
	abort := func(why string) (*Report, error) {
		cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		return nil, fmt.Errorf("%s (see %s and %s)", why, vmmErr.Name(), guestOut.Name())
	}
	for needPty && e.ptyPath == "" {
		select {
		case e.ptyPath = <-ptyCh:
		case err := <-exited:
			return nil, fmt.Errorf("vmm exited during start-up (%v); see %s", err, vmmErr.Name())
		case <-boot:
			return abort("vmm printed no pty path in 2 minutes")
		}
	}
	select {
	case <-g.first:
	case err := <-exited:
		return nil, fmt.Errorf("vmm exited before the guest's first heartbeat (%v); see %s and %s", err, vmmErr.Name(), guestOut.Name())
	case <-boot:
		return abort("no guest heartbeat in 2 minutes")
	}
	e.logf("streaming: %d ports, %d chaos events, vmm pid %d, booted in %v", len(ports), len(sched.Events), cmd.Process.Pid, e.t0.Sub(started).Round(time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	peers := make([]*peer, len(ports))
	var managers sync.WaitGroup
	for i, spec := range ports {
		peers[i] = newPeer(spec, e)
		managers.Add(1)
		go func() { defer managers.Done(); peers[i].manage(ctx) }()
	}
	sc := &scheduler{env: e, peers: peers}
	sc.wg.Add(1)
	go sc.run(ctx, sched)
	mon := &monitor{env: e, peers: peers, pid: cmd.Process.Pid, guest: g, progress: cfg.Progress}
	if q, err := dialQMP(e.qmpPath()); err != nil {
		e.violate("", "", -1, fmt.Sprintf("vmm's QMP monitor: %v", err))
	} else {
		mon.qmp = q
	}

	// Run for the duration, or until vmm ends on its own.
	deadline := e.t0.Add(cfg.Duration)
	tk := time.NewTicker(time.Second)
	var exitErr error
	early := false
loop:
	for {
		select {
		case now := <-tk.C:
			mon.sample(now)
			if !now.Before(deadline) {
				break loop
			}
		case exitErr = <-exited:
			early = true
			break loop
		}
	}
	tk.Stop()
	if mon.qmp != nil {
		mon.qmp.close() // before the fd count below
	}
	elapsed := e.now()

	// The end: vmm stops on SIGTERM, with status 128+15 as a process
	// ended by a signal does; then the peers go.
	e.stopping.Store(true)
	status := -1
	if early {
		status = exitStatus(exitErr)
		e.violate("", "", -1, fmt.Sprintf("vmm exited by itself with status %d (%v) before the end", status, exitErr))
	} else {
		cmd.Process.Signal(unix.SIGTERM)
		select {
		case exitErr = <-exited:
			status = exitStatus(exitErr)
			if want := 128 + int(unix.SIGTERM); status != want {
				e.violate("", "", -1, fmt.Sprintf("vmm exited with status %d on SIGTERM (%v); want %d", status, exitErr, want))
			}
		case <-time.After(15 * time.Second):
			e.violate("", "", -1, "vmm did not stop within 15s of SIGTERM; killed")
			cmd.Process.Kill()
			<-exited
		}
	}
	cancel()
	managersDone := make(chan struct{})
	go func() { managers.Wait(); close(managersDone) }()
	select {
	case <-managersDone:
	case <-time.After(10 * time.Second):
		e.violate("", "", -1, "host peers did not stop within 10s")
	}
	sc.wait()
	if left := ownFDs() - fdsBefore; fdsBefore >= 0 && left > 3 { // our three report files are still open
		e.violate("", "", -1, fmt.Sprintf("the soak left %d fds open", left-3))
	}
	if kids := children(); len(kids) > 0 {
		e.violate("", "", -1, fmt.Sprintf("child processes left: %v", kids))
	}
	rep := buildReport(cfg, ports, sched, e, peers, mon, g, sc, elapsed, status)
	if err := rep.write(cfg.Out); err != nil {
		return rep, err
	}
	return rep, nil
}

// vmmArgs is the `vmm run` command line: one virtserialport per port
// and the guest's vs jobs, w and r on each.
func vmmArgs(cfg Config, ports []PortSpec, s *Schedule, e *env) ([]string, error) {
	// A guest job may see no progress while its port is away or paused.
	timeout := max(60*time.Second, 2*s.MaxFor()+30*time.Second)
	maxPorts := min(len(ports)+1, MaxPorts)
	args := []string{"run", "-kernel", cfg.Guest, "-m", "256M", "-device", fmt.Sprintf("virtio-serial-device,max_ports=%d", maxPorts),
		"-qmp", "unix:" + e.qmpPath() + ",server=on,wait=off"}
	var jobs []string
	for i, p := range ports {
		nr := i + 1
		if len(ports) == MaxPorts {
			nr = i // all 31 numbers, 0 included
		}
		var chardev string
		switch p.Backend {
		case Socket:
			chardev = fmt.Sprintf("socket,id=%s,path=%s,server=on,wait=off", p.Name, e.sockPath(p))
		case Pty:
			chardev = "pty,id=" + p.Name
		case Pipe:
			base := e.pipeBase(p)
			for _, suf := range []string{".in", ".out"} {
				if err := unix.Mkfifo(base+suf, 0o600); err != nil {
					return nil, fmt.Errorf("port %s: mkfifo %s%s: %w", p.Name, base, suf, err)
				}
			}
			chardev = fmt.Sprintf("pipe,id=%s,path=%s", p.Name, base)
		}
		args = append(args, "-chardev", chardev,
			"-device", fmt.Sprintf("virtserialport,chardev=%s,name=%s,nr=%d", p.Name, p.Name, nr))
		jobs = append(jobs, p.Name+":w:1000G")
		if p.HostToGuest {
			jobs = append(jobs, p.Name+":r:1000G")
		}
	}
	cmdline := fmt.Sprintf("vs-timeout %d; vs %s; exit 0", int(timeout.Seconds()), strings.Join(jobs, " "))
	return append(args, "-append", cmdline), nil
}

// scanStderr copies vmm's stderr and hands on the pty's path.
func scanStderr(r io.Reader, w io.Writer, pty chan<- string) {
	buf := make([]byte, 4096)
	var line []byte
	sent := false
	for {
		n, err := r.Read(buf)
		w.Write(buf[:n])
		if !sent {
			line = append(line, buf[:n]...)
			if m := ptyRE.FindSubmatch(line); m != nil {
				pty <- string(m[1])
				sent = true
			}
		}
		if err != nil {
			return
		}
	}
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// ownFDs counts this process's open fds, or -1.
func ownFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// children lists this process's live children (where the kernel
// offers /proc/PID/task/TID/children).
func children() []string {
	var kids []string
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		kids = append(kids, strings.Fields(string(b))...)
	}
	return kids
}
