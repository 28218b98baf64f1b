package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vmm/soak"
)

// TestBadInput: every bad input exits non-zero with one line on stderr
// naming the problem, nothing on stdout, and no panic.
func TestBadInput(t *testing.T) {
	guest := guestELF(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.bin")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a kernel ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	bigInitrd := filepath.Join(dir, "big.cpio")
	if err := os.WriteFile(bigInitrd, make([]byte, 40<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
		kvm  bool // the check happens after /dev/kvm is opened
	}{
		{"missing kernel file", []string{"-kernel", filepath.Join(dir, "nope")}, "-kernel: open " + dir + "/nope: no such file or directory", false},
		{"unreadable kernel (a directory)", []string{"-kernel", dir}, "-kernel: read " + dir + ": is a directory", false},
		{"missing initrd", []string{"-kernel", guest, "-initrd", filepath.Join(dir, "none")}, "-initrd: open " + dir + "/none: no such file or directory", false},
		{"not a kernel", []string{"-kernel", junk}, "not a bzImage or a PVH ELF", true},
		{"memory too small for initrd", []string{"-kernel", guest, "-initrd", bigInitrd, "-m", "64M"}, "-m 64M: the kernel and the initrd (40M) do not fit in guest memory: give more, e.g. -m 256M", true},
		{"memory too small for the kernel's bss", []string{"-kernel", guest, "-m", "32M"}, "-m 32M: the kernel does not fit in guest memory: give more, e.g. -m 128M", true},
		{"more memory than the host", []string{"-kernel", guest, "-m", "1000G"}, "-m 1000G: more than this host's memory", true},
		{"far more memory than the host", []string{"-kernel", guest, "-m", "100000G"}, "-m 100000G: more than this host's memory", true},
		{"empty socket path", []string{"-kernel", guest, "-chardev", "socket,id=a,path=,server=on"}, "path= is empty", false},
		{"empty file path", []string{"-kernel", guest, "-chardev", "file,id=a,path="}, "-chardev file: path= is empty", false},
		{"ringbuf size zero", []string{"-kernel", guest, "-chardev", "ringbuf,id=a,size=0"}, "size=0 must be a power of two from 1 to 1G, e.g. size=64K", false},
		{"smp topology disagrees", []string{"-kernel", guest, "-smp", "4,sockets=1,cores=2,threads=1"}, "but cpus=4", false},
		{"daemonize with stdio", []string{"-kernel", guest, "-daemonize", "-serial", "stdio"}, "-daemonize: -serial stdio would need the terminal vmm leaves", false},
		{"microvm with a PCI device", []string{"-kernel", guest, "-M", "microvm", "-device", "virtio-serial-pci"}, "-M microvm has no PCI bus", false},
		{"pidfile in a missing folder", []string{"-kernel", guest, "-pidfile", dir + "/no/such/dir/pid"}, "-pidfile: open " + dir + "/no/such/dir/pid", false},
		{"smp 0", []string{"-kernel", guest, "-smp", "0"}, "-smp 0: at least one vCPU is needed", false},
		{"smp not a number", []string{"-kernel", guest, "-smp", "two"}, "-smp two: not a number of vCPUs", false},
		{"smp beyond KVM", []string{"-kernel", guest, "-smp", "100000"}, "-smp 100000: more vCPUs than KVM allows", true},
		{"unparsable size", []string{"-kernel", guest, "-m", "12Q"}, `-m 12Q: cannot parse size "12Q"`, false},
		{"negative size", []string{"-kernel", guest, "-m", "-5"}, `-m -5: cannot parse size "-5"`, false},
		{"tiny memory", []string{"-kernel", guest, "-m", "1M"}, "-m 1M: guest memory must be at least 16 MiB", false},
		{"unknown option", []string{"-kernel", guest, "-frobnicate", "1"}, `unknown option "-frobnicate"`, false},
		{"option without value", []string{"-kernel"}, "option -kernel needs a value", false},
		{"no kernel", []string{"-m", "64M"}, "no kernel: -kernel FILE is required", false},
		{"stray argument", []string{"-kernel", guest, "extra"}, `unexpected argument "extra"`, false},
		{"unknown cpu feature", []string{"-kernel", guest, "-cpu", "host,+warp-drive"}, `-cpu: unknown CPU feature "warp-drive"`, false},
		{"unknown cpu model", []string{"-kernel", guest, "-cpu", "pentium"}, `unsupported CPU model "pentium"`, false},
		{"unknown serial backend", []string{"-kernel", guest, "-serial", "telepathy"}, "-serial telepathy: unknown or unsupported backend", false},
		{"serial on a telnet socket", []string{"-kernel", guest, "-serial", "telnet:localhost:4444,server"}, "telnet, udp, vc and host devices are not supported", false},
		{"two -serial", []string{"-kernel", guest, "-serial", "null", "-serial", "stdio"}, "vmm has one serial port (COM1)", false},
		{"serial chardev not defined", []string{"-kernel", guest, "-serial", "chardev:nope"}, `-serial chardev:nope: chardev "nope" is not defined`, false},
		{"serial chardev also on a port", []string{"-kernel", guest, "-chardev", "null,id=a", "-serial", "chardev:a", "-device", "virtio-serial",
			"-device", "virtconsole,chardev=a"}, `chardev "a" is already used by -serial chardev:a`, false},
		{"serial socket without port", []string{"-kernel", guest, "-serial", "tcp:localhost"}, "want tcp:HOST:PORT", false},
		{"serial socket bad option", []string{"-kernel", guest, "-serial", "unix:/tmp/x.sock,server,colour=red"}, `-serial unix:/tmp/x.sock,server,colour=red: socket: unknown property "colour"`, false},
		{"unknown chardev id", []string{"-kernel", guest, "-device", "virtio-serial", "-device", "virtserialport,chardev=nope"}, `chardev "nope" is not defined (no -chardev …,id=nope)`, false},
		{"chardev without id", []string{"-kernel", guest, "-chardev", "null"}, "-chardev null: id= is required", false},
		{"duplicate chardev id", []string{"-kernel", guest, "-chardev", "null,id=a", "-chardev", "null,id=a"}, `id "a" is already defined`, false},
		{"unknown chardev backend", []string{"-kernel", guest, "-chardev", "carrier-pigeon,id=a"}, "-chardev carrier-pigeon: unknown backend", false},
		{"socket without path", []string{"-kernel", guest, "-chardev", "socket,id=a,server=on"}, "-chardev socket: path= (unix) or host=,port= (tcp) is required", false},
		{"port without chardev", []string{"-kernel", guest, "-device", "virtio-serial", "-device", "virtserialport,name=x"}, "-device virtserialport: chardev= is required", false},
		{"port without bus", []string{"-kernel", guest, "-chardev", "null,id=a", "-device", "virtserialport,chardev=a"}, "needs a -device virtio-serial", false},
		{"duplicate port number", []string{"-kernel", guest, "-device", "virtio-serial", "-chardev", "null,id=a", "-chardev", "null,id=b",
			"-device", "virtserialport,chardev=a,nr=3", "-device", "virtserialport,chardev=b,nr=3"}, "port number 3 is already in use", false},
		{"duplicate port name", []string{"-kernel", guest, "-device", "virtio-serial", "-chardev", "null,id=a", "-chardev", "null,id=b",
			"-device", "virtserialport,chardev=a,name=x", "-device", "virtserialport,chardev=b,name=x"}, `port name "x" is already in use`, false},
		{"nr out of range", []string{"-kernel", guest, "-device", "virtio-serial,max_ports=4", "-chardev", "null,id=a",
			"-device", "virtserialport,chardev=a,nr=4"}, "nr=4 out of range (max_ports=4 allows 0 to 3)", false},
		{"max_ports too big", []string{"-kernel", guest, "-device", "virtio-serial,max_ports=32"}, "max_ports=32 out of range (1 to 31)", false},
		{"chardev used twice", []string{"-kernel", guest, "-device", "virtio-serial", "-chardev", "null,id=a",
			"-device", "virtserialport,chardev=a", "-device", "virtserialport,chardev=a"}, `chardev "a" is already used`, false},
		{"unknown device property", []string{"-kernel", guest, "-device", "virtio-serial,colour=blue"}, `unknown property "colour"`, false},
		{"unknown device", []string{"-kernel", guest, "-device", "e1000"}, "-device e1000: unknown device", false},
		{"socket path cannot be bound", []string{"-kernel", guest, "-device", "virtio-serial", "-chardev", "socket,id=a,path=/nonexistent-dir/x.sock,server=on,wait=off",
			"-device", "virtserialport,chardev=a"}, "chardev a: bind /nonexistent-dir/x.sock: no such file or directory", false},
		{"socket client with no server", []string{"-kernel", guest, "-device", "virtio-serial", "-chardev", "socket,id=a,path=" + dir + "/none.sock",
			"-device", "virtserialport,chardev=a"}, "chardev a: connect " + dir + "/none.sock: no such file or directory", false},
		{"pipe that does not exist", []string{"-kernel", guest, "-device", "virtio-serial", "-chardev", "pipe,id=a,path=" + dir + "/nopipe",
			"-device", "virtserialport,chardev=a"}, "chardev a: open " + dir + "/nopipe: no such file or directory", false},
		{"reconnect on a server", []string{"-kernel", guest, "-chardev", "socket,id=a,host=127.0.0.1,port=4000,server=on,reconnect=1"}, "reconnect=1: only for a client", false},
		{"tcp port not a number", []string{"-kernel", guest, "-chardev", "socket,id=a,host=127.0.0.1,port=http"}, "port=http is not a port number", false},
		{"ringbuf size not a power of two", []string{"-kernel", guest, "-chardev", "ringbuf,id=a,size=1000"}, "size=1000 must be a power of two", false},
		{"bad disconnected policy", []string{"-kernel", guest, "-device", "virtio-serial", "-chardev", "null,id=a",
			"-device", "virtserialport,chardev=a,disconnected=maybe"}, "disconnected=maybe: want hold or drop", false},
		{"limit on a serial port", []string{"-kernel", guest, "-device", "virtio-serial", "-chardev", "null,id=a",
			"-device", "virtserialport,chardev=a,limit=4K"}, "limit= applies to virtconsole", false},
		{"stdio twice", []string{"-kernel", guest, "-serial", "stdio", "-chardev", "stdio,id=a"}, "stdio is used twice (-chardev stdio,id=a and -serial stdio)", false},
		{"two -chardev stdio", []string{"-kernel", guest, "-chardev", "stdio,id=a", "-chardev", "stdio,id=b"}, "stdio is used twice (-chardev stdio,id=a and -chardev stdio,id=b)", false},
	}
	// Bad files and host resources exit 1; everything else is a bad
	// option or property: 2.
	status1 := map[string]bool{"missing kernel file": true, "unreadable kernel (a directory)": true, "missing initrd": true,
		"not a kernel": true, "socket path cannot be bound": true, "socket client with no server": true,
		"pipe that does not exist": true, "pidfile in a missing folder": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kvm {
				needKVM(t)
			}
			r := run(t, 30*time.Second, vmmBinary(t), append([]string{"run"}, tt.args...)...)
			want := 2
			if status1[tt.name] {
				want = 1
			}
			if r.status != want {
				t.Errorf("vmm run %q exited %d; want %d", tt.args, r.status, want)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "vmm: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("vmm run %q stderr = %q; want one line \"vmm: …%s…\"", tt.args, r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("vmm run %q stdout = %q; want nothing (only the guest writes there)", tt.args, r.stdout)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	r := run(t, 10*time.Second, vmmBinary(t))
	if r.status != 2 || !strings.Contains(r.stderr, "usage: vmm run -kernel FILE") {
		t.Errorf("vmm with no arguments: status %d stderr %q; want 2 and the usage", r.status, r.stderr)
	}
	r = run(t, 10*time.Second, vmmBinary(t), "frob")
	if r.status != 2 || !strings.Contains(r.stderr, `unknown command "frob"`) {
		t.Errorf("vmm frob: status %d stderr %q; want 2 and an unknown-command line", r.status, r.stderr)
	}
}

// TestSeveralVirtioSerialDevices: QEMU's device forms — id= on each
// controller, bus=ID.0 on ports — with a virtio-pci and a virtio-mmio
// controller in one VM, each with its own port; the guest finds both
// devices and writes a checkable stream to each port, which arrives in
// that port's file.
func TestSeveralVirtioSerialDevices(t *testing.T) {
	needKVM(t)
	dir := t.TempDir()
	fa, fb := filepath.Join(dir, "a.out"), filepath.Join(dir, "b.out")
	r := runVMM(t, "-kernel", guestELF(t), "-serial", "stdio",
		"-append", "vs-ports; vs a:w:5000 b:w:7000; exit 0",
		"-device", "virtio-serial-pci,id=vs0,max_ports=4",
		"-device", "virtio-serial-device,id=vs1,max_ports=3",
		"-chardev", "file,id=fa,path="+fa, "-chardev", "file,id=fb,path="+fb,
		"-device", "virtserialport,id=pa,bus=vs0.0,chardev=fa,name=a",
		"-device", "virtserialport,id=pb,bus=vs1.0,chardev=fb,name=b,nr=2")
	if r.status != 0 {
		t.Fatalf("exit %d; want 0\n%s\n%s", r.status, withoutHeartbeats(r.stdout), r.stderr)
	}
	// The guest lists virtio-mmio devices (vs1) before PCI ones (vs0).
	checkLines(t, r.stdout, []string{"guest: vs port 2 name=b console=0 open=1", "guest: vs max_ports=3",
		"guest: vs port 1 name=a console=0 open=1", "guest: vs max_ports=4"})
	for f, n := range map[string]int{fa: 5000, fb: 7000} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != n || soak.Check(b, 0) >= 0 {
			t.Errorf("%s: %d bytes (first bad at %d); want the %d-byte pattern", f, len(b), soak.Check(b, 0), n)
		}
	}
}

// TestHelp: asking for help or the version is not an error: the answer
// goes to stdout with status 0, and `vmm run --help` lists every option,
// the chardev backends, the Ctrl-A keys and the exit statuses.
func TestHelp(t *testing.T) {
	vmm := vmmBinary(t)
	runHelp := run(t, 10*time.Second, vmm, "run", "--help")
	for _, args := range [][]string{{"run", "--help"}, {"run", "-h"}, {"help", "run"}, {"run", "-kernel", "x", "-help"}} {
		r := run(t, 10*time.Second, vmm, args...)
		if r.status != 0 || r.stderr != "" || r.stdout != runHelp.stdout {
			t.Errorf("vmm %q: status %d, stderr %q, stdout %d bytes; want 0, nothing, the run help", args, r.status, r.stderr, len(r.stdout))
		}
	}
	for _, want := range []string{"-kernel FILE", "-serial BACKEND", "unix:PATH[,server][,nowait]", "chardev:ID",
		"-device virtserialport,chardev=ID[,bus=ID.0]", "socket   path=PATH", "ringbuf  size=N", "stdio    [,signal=on|off]",
		"Ctrl-A x", "Ctrl-A h", "Exit status:", "128+N", "2       a bad option", "-M [type=]q35|pc|microvm", "-action panic="} {
		if !strings.Contains(runHelp.stdout, want) {
			t.Errorf("vmm run --help lacks %q", want)
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}} {
		r := run(t, 10*time.Second, vmm, args...)
		if r.status != 0 || !strings.Contains(r.stdout, "usage: vmm run -kernel FILE") || r.stderr != "" {
			t.Errorf("vmm %q: status %d stdout %q stderr %q; want 0 and the usage on stdout", args, r.status, r.stdout, r.stderr)
		}
	}
	r := run(t, 10*time.Second, vmm, "version")
	if r.status != 0 || !strings.HasPrefix(r.stdout, "vmm ") || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("vmm version: status %d stdout %q; want 0 and one line naming the build and Go", r.status, r.stdout)
	}
	r = run(t, 10*time.Second, vmm, "soak", "-h")
	if r.status != 0 || !strings.Contains(r.stdout, "usage: vmm soak") || !strings.Contains(r.stdout, "-duration") || r.stderr != "" {
		t.Errorf("vmm soak -h: status %d stdout %q stderr %q; want 0 and the usage with its flags on stdout", r.status, r.stdout, r.stderr)
	}
	r = run(t, 10*time.Second, vmm, "help", "frob")
	if r.status != 2 || !strings.Contains(r.stderr, `unknown command "frob"`) {
		t.Errorf("vmm help frob: status %d stderr %q; want 2", r.status, r.stderr)
	}
}

// TestAcceptedOptions: a command line as a QEMU or libvirt user writes
// it boots: the no-op options are taken, -smp with a topology gives that
// many CPUs, -name appears in log lines, and -pidfile holds vmm's pid
// while it runs and is gone after.
func TestAcceptedOptions(t *testing.T) {
	needKVM(t)
	pidfile := filepath.Join(t.TempDir(), "vmm.pid")
	cmd := exec.Command(vmmBinary(t), "run", "-kernel", guestELF(t), "-append", "smp; echo booted; loop 10000000000000; exit 9",
		"-no-reboot", "-display", "none", "-vga", "none", "-nodefaults", "-serial", "stdio", "-nographic", "-no-user-config",
		"-name", "guest=web1,debug-threads=on", "-pidfile", pidfile, "-enable-kvm", "-accel", "kvm",
		"-machine", "q35,accel=kvm,usb=off,vmport=off,dump-guest-core=off", "-smp", "2,sockets=1,cores=2,threads=1")
	cmd.Env = append(os.Environ(), "VMM_LOG=info")
	p := startVM(t, cmd)
	waitConsole(t, p, "\nbooted\n", time.Minute)
	if !strings.Contains(p.con.String(), "guest: smp 2 cpus online") {
		t.Errorf("-smp 2,sockets=1,cores=2,threads=1: the guest did not see 2 CPUs\n%s", &p.con)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("-pidfile: %q, %v; want %d", b, err, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	vmEndedWith(t, p, 128+int(syscall.SIGTERM))
	if !strings.Contains(p.con.String(), "vm=web1") {
		t.Errorf("-name web1: not in the log lines:\n%s", &p.con)
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("-pidfile still there after exit (%v)", err)
	}
}

// TestMicrovm: -M microvm has no PCI, so the bare -device virtio-serial
// is virtio-mmio there (on q35 it is PCI), and the guest finds its port;
// -pci is refused (TestBadInput).
func TestMicrovm(t *testing.T) {
	needKVM(t)
	for _, machine := range []string{"microvm", "q35", "pc"} {
		r := runVMM(t, "-M", machine, "-kernel", guestELF(t), "-append", "vs-ports; exit 0",
			"-device", "virtio-serial,id=vs0", "-chardev", "null,id=n", "-device", "virtserialport,bus=vs0.0,chardev=n,name=n")
		if r.status != 0 || !strings.Contains(r.stdout, "guest: vs port 1 name=n console=0 open=1") {
			t.Errorf("-M %s: status %d; want 0 and the port found\n%s\n%s", machine, r.status, r.stdout, r.stderr)
		}
	}
}

// TestRunHelpMatchesREADME: the README's option table lists the options
// `vmm run --help` lists, no more and no fewer.
func TestRunHelpMatchesREADME(t *testing.T) {
	help := run(t, 10*time.Second, vmmBinary(t), "run", "--help").stdout
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`(?:^|, )(-[A-Za-z][A-Za-z-]*)(?: (virtio-serial|virtserialport|virtconsole|pvpanic))?`)
	collect := func(cells []string) map[string]bool {
		set := map[string]bool{}
		for _, c := range cells {
			for _, m := range name.FindAllStringSubmatch(c, -1) {
				set[strings.TrimSpace(m[1]+" "+m[2])] = true
			}
		}
		return set
	}
	// Help: the name column of the "Options:" block.
	var helpCells []string
	block := help[strings.Index(help, "Options:\n"):]
	block = block[:strings.Index(block, "\n\n")]
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "  -") {
			cell, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
			helpCells = append(helpCells, cell)
		}
	}
	// README: the first column of the table under "## `vmm run`".
	sec := string(readme)
	sec = sec[strings.Index(sec, "## `vmm run`"):]
	sec = sec[:strings.Index(sec[1:], "\n## ")+1]
	var readmeCells []string
	for _, line := range strings.Split(sec, "\n") {
		if strings.HasPrefix(line, "| `-") {
			cell := strings.Split(line, " | ")[0]
			readmeCells = append(readmeCells, strings.NewReplacer("`", "", "| ", "").Replace(cell))
		}
	}
	h, r := collect(helpCells), collect(readmeCells)
	if len(h) < 20 {
		t.Fatalf("found only %d options in vmm run --help: %v", len(h), h)
	}
	for o := range h {
		if !r[o] {
			t.Errorf("%s is in vmm run --help but not in the README's option table", o)
		}
	}
	for o := range r {
		if !h[o] {
			t.Errorf("%s is in the README's option table but not in vmm run --help", o)
		}
	}
}
