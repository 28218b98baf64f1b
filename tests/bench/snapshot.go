package main

// Snapshot rows (#13): for the test guest and the Linux test kernel,
// vmm and QEMU save a 256 MiB VM that waits for input (vmm: QMP migrate
// to file:, QEMU: exec:cat > FILE), then restore it with the input
// ready (vmm: -incoming file:, QEMU: -incoming "exec:cat FILE"); a row
// times process start to the guest's first line after the restore, and
// a cold boot to the same line.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"vmm/soak"
)

// snapScenario is one guest: how to start it waiting, and what it
// prints once it has its input.
type snapScenario struct {
	name   string
	source []string // kernel and command line of the VM to save
	cold   []string // kernel and command line of the cold boot
	ready  string   // the source's line before it waits
	marker string   // the line after the input arrived
	// input: the test guest reads COM1 (stdin); the Linux one a port on
	// a pipe chardev (fifo != "").
	stdin string
	fifo  bool
}

type snapPeer struct {
	name    string
	argv    func(extra []string) []string // the VM with extra args (kernel, devices, -incoming)
	saveURI func(path string) string
	loadArg func(path string, kernel []string) []string // QEMU wants the kernel options again
	devices func(pipe string) []string                  // the Linux scenario's port on pipe PATH
}

type snapResult struct {
	save            time.Duration
	size, allocated int64
	restore, cold   []float64 // ms
}

func snapshotTable(vmm, guest, linuxDir string, runs int) (string, error) {
	const mem = "256M"
	peers := []snapPeer{
		{"vmm", func(extra []string) []string { return append([]string{vmm, "run", "-m", mem}, extra...) },
			func(p string) string { return "file:" + p },
			func(p string, _ []string) []string { return []string{"-incoming", "file:" + p} },
			func(pipe string) []string {
				return []string{"-device", "virtio-serial-device", "-chardev", "pipe,id=in,path=" + pipe,
					"-device", "virtserialport,chardev=in,name=org.vmm.in"}
			}},
		{"qemu", func(extra []string) []string {
			a := qemuArgv()
			for i := range a {
				if a[i] == "-m" {
					a[i+1] = mem
				}
			}
			return append(a, extra...)
		},
			func(p string) string { return "exec:cat > " + p },
			func(p string, kernel []string) []string {
				return append(append([]string{}, kernel...), "-incoming", "exec:cat "+p)
			},
			func(pipe string) []string {
				return []string{"-global", "virtio-mmio.force-legacy=false", "-device", "virtio-serial-device",
					"-chardev", "pipe,id=in,path=" + pipe, "-device", "virtserialport,chardev=in,name=org.vmm.in"}
			}},
	}
	scenarios := []snapScenario{{
		name:   "test guest",
		source: []string{"-kernel", guest, "-append", "echo booted; serial 1; echo restored; exit 0"},
		cold:   []string{"-kernel", guest, "-append", "echo booted; echo restored; exit 0"},
		ready:  "booted", marker: "restored", stdin: "x",
	}}
	if linuxDir != "" {
		const cl = "console=ttyS0 quiet noxsave clearcpuid=151,308,297,580,141 reboot=t rodata=off retain_initrd vmm.cmd=vs=org.vmm.in:r:1"
		k := []string{"-kernel", linuxDir + "/vmlinux", "-initrd", linuxDir + "/initrd.cpio", "-append", cl}
		scenarios = append(scenarios, snapScenario{name: "Linux test kernel", source: k, cold: k,
			ready: "vmm-init: ready", marker: "vmm-init: vs org.vmm.in:r:1 done", fifo: true})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Snapshot and restore, %s guest, vmm vs QEMU %s, %d restores and cold boots each, median (min–max)\n", mem, qemuVersion(), runs)
	fmt.Fprintf(&b, "%-44s %-26s %-26s %s\n", "metric", "vmm", "qemu", "vmm/qemu")
	for _, sc := range scenarios {
		res := map[string]*snapResult{}
		for _, p := range peers {
			r, err := snapMeasure(p, sc, runs)
			if err != nil {
				return "", fmt.Errorf("%s, %s: %w", sc.name, p.name, err)
			}
			res[p.name] = r
		}
		one := func(v float64, unit string) string { return fmt.Sprintf("%.1f %s", v, unit) }
		row := func(name, a, q string, ratio float64) {
			fmt.Fprintf(&b, "%-44s %-26s %-26s %.2f×\n", sc.name+": "+name, a, q, ratio)
		}
		v, q := res["vmm"], res["qemu"]
		row("save (migrate → completed)", one(ms(v.save), "ms"), one(ms(q.save), "ms"), ms(v.save)/ms(q.save))
		row("file: disk used (apparent size)", fmt.Sprintf("%.1f MiB (%.0f MiB)", mib(v.allocated), mib(v.size)),
			fmt.Sprintf("%.1f MiB (%.0f MiB)", mib(q.allocated), mib(q.size)), float64(v.allocated)/float64(q.allocated))
		cell := func(xs []float64) (string, float64) {
			s := summarize(xs)
			return fmt.Sprintf("%.1f ms (%.1f–%.1f)", s.med, s.lo, s.hi), s.med
		}
		a, am := cell(v.restore)
		c, cm := cell(q.restore)
		row("start → first line after restore", a, c, am/cm)
		a2, am2 := cell(v.cold)
		c2, cm2 := cell(q.cold)
		row("start → same line, cold boot", a2, c2, am2/cm2)
		fmt.Fprintf(&b, "%-44s %-26s %-26s\n", sc.name+": restore / cold boot", fmt.Sprintf("%.3f×", am/am2), fmt.Sprintf("%.3f×", cm/cm2))
	}
	return b.String(), nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func debugf(format string, args ...any) {
	if os.Getenv("BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	}
}

// snapMeasure saves one VM of the scenario, then restores it and cold
// boots it runs times each, interleaved.
func snapMeasure(p snapPeer, sc snapScenario, runs int) (*snapResult, error) {
	dir, err := os.MkdirTemp("", "bench-snap")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "vm.snap")
	sock := filepath.Join(dir, "qmp.sock")
	res := &snapResult{}

	// The source: started waiting, saved, ended.
	var devs []string
	if sc.fifo {
		pipe := filepath.Join(dir, "src")
		closePipe, err := makePipe(pipe, nil)
		if err != nil {
			return nil, err
		}
		defer closePipe()
		devs = p.devices(pipe)
	}
	argv := p.argv(append(append(append([]string{}, sc.source...), devs...), "-qmp", "unix:"+sock+",server=on,wait=off"))
	src := exec.Command(argv[0], argv[1:]...)
	stdin, err := src.StdinPipe() // held open: the guest waits for input
	if err != nil {
		return nil, err
	}
	defer stdin.Close()
	out, err := src.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := src.Start(); err != nil {
		return nil, err
	}
	defer func() { src.Process.Kill(); src.Wait() }()
	debugf("%s %s: source %q", p.name, sc.name, argv)
	if err := waitLine(bufio.NewReader(out), sc.ready, 10*time.Minute); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	debugf("source ready")
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := out.Read(buf); err != nil {
				return
			}
		}
	}()
	q, err := dialQMP(sock)
	if err != nil {
		return nil, err
	}
	defer q.c.Close()
	if sc.fifo {
		// Save once the guest has the port open (it then waits in read).
		if err := q.waitFrontendOpen("in", 10*time.Minute); err != nil {
			return nil, err
		}
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if _, err := q.cmd("migrate", map[string]string{"uri": p.saveURI(file)}); err != nil {
		return nil, err
	}
	for {
		r, err := q.cmd("query-migrate", nil)
		if err != nil {
			return nil, err
		}
		var st struct{ Status string }
		json.Unmarshal(r, &st)
		if st.Status == "completed" {
			break
		}
		if st.Status == "failed" || time.Since(start) > 5*time.Minute {
			return nil, fmt.Errorf("migrate: %s", r)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.save = time.Since(start)
	debugf("saved in %v", res.save)
	q.cmd("quit", nil)
	src.Wait()
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	res.size = fi.Size()
	res.allocated = fi.Sys().(*syscall.Stat_t).Blocks * 512

	for i := 0; i < runs; i++ {
		for _, restore := range []bool{true, false} {
			var extra []string
			if restore {
				extra = p.loadArg(file, sc.source)
			} else {
				extra = append([]string{}, sc.cold...)
			}
			if sc.fifo {
				pipe := filepath.Join(dir, fmt.Sprintf("in%d-%v", i, restore))
				closePipe, err := makePipe(pipe, soak.Pattern(0, 1))
				if err != nil {
					return nil, err
				}
				defer closePipe()
				extra = append(extra, p.devices(pipe)...)
			}
			input := ""
			if restore {
				input = sc.stdin
			}
			d, err := timeToLine(p.argv(extra), input, sc.marker)
			if err != nil {
				return nil, fmt.Errorf("restore=%v: %w", restore, err)
			}
			if restore {
				res.restore = append(res.restore, ms(d))
			} else {
				res.cold = append(res.cold, ms(d))
			}
		}
	}
	return res, nil
}

// makePipe makes PATH.in (holding data) and PATH.out, both held open
// here so the VMM's opens never block.
func makePipe(path string, data []byte) (func(), error) {
	var fds []int
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	for _, suffix := range []string{".in", ".out"} {
		if err := unix.Mkfifo(path+suffix, 0o600); err != nil {
			closeAll()
			return nil, err
		}
		fd, err := unix.Open(path+suffix, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll()
			return nil, err
		}
		fds = append(fds, fd)
	}
	if len(data) > 0 {
		if _, err := unix.Write(fds[0], data); err != nil {
			closeAll()
			return nil, err
		}
	}
	// Drain what the guest writes, so the VMM never waits on .out.
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := unix.Read(fds[1], buf); err != nil && err != unix.EAGAIN {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return closeAll, nil
}

// timeToLine runs argv with input on stdin (kept open after it) and
// returns the time from start to the first stdout line containing
// marker; the VM is then killed.
func timeToLine(argv []string, input, marker string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if input != "" {
		// Again every millisecond until the line comes: QEMU drops what
		// reaches its stdio before the incoming migration has loaded
		// the UART.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				stdin.Write([]byte(input))
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		}()
	}
	debugf("timing %q", argv)
	if err := waitLine(bufio.NewReader(out), marker, 10*time.Minute); err != nil {
		return 0, err
	}
	debugf("took %v", time.Since(start))
	return time.Since(start), nil
}

func waitLine(r *bufio.Reader, marker string, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if strings.Contains(line, marker) {
				done <- nil
				return
			}
			if err != nil {
				done <- fmt.Errorf("no line with %q before %v", marker, err)
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("no line with %q in %v", marker, timeout)
	}
}

// qmpConn is the least QMP client: commands one at a time, events
// skipped.
type qmpConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialQMP(sock string) (*qmpConn, error) {
	var c net.Conn
	var err error
	for i := 0; i < 3000; i++ {
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	q := &qmpConn{c: c, r: bufio.NewReader(c)}
	if _, err := q.r.ReadString('\n'); err != nil { // the greeting
		return nil, err
	}
	if _, err := q.cmd("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *qmpConn) cmd(name string, args any) (json.RawMessage, error) {
	b, _ := json.Marshal(map[string]any{"execute": name, "arguments": args})
	if args == nil {
		b, _ = json.Marshal(map[string]any{"execute": name})
	}
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		var m struct {
			Return json.RawMessage
			Error  *struct{ Class, Desc string }
		}
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s: %s", name, m.Error.Class, m.Error.Desc)
		}
		if m.Return != nil {
			return m.Return, nil
		}
	}
}

// waitFrontendOpen polls query-chardev until the guest has id open.
func (q *qmpConn) waitFrontendOpen(id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		r, err := q.cmd("query-chardev", nil)
		if err != nil {
			return err
		}
		var cs []struct {
			Label        string `json:"label"`
			FrontendOpen bool   `json:"frontend-open"`
		}
		json.Unmarshal(r, &cs)
		for _, c := range cs {
			if c.Label == id && c.FrontendOpen {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("chardev %s: the guest did not open its port in %v", id, timeout)
}
