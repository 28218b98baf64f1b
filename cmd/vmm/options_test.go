package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	vmmboot "vmm/boot"
)

func TestParseMemSize(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr string
	}{
		{"512", 512 << 20, ""},
		{"512M", 512 << 20, ""},
		{"512m", 512 << 20, ""},
		{"2G", 2 << 30, ""},
		{"1.5G", 3 << 29, ""},
		{"65536K", 64 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"size=1G", 1 << 30, ""},
		{"1G,slots=2,maxmem=4G", 1 << 30, ""},
		{"12Q", 0, `cannot parse size "12Q"`},
		{"", 0, `cannot parse size ""`},
		{"M", 0, `cannot parse size "M"`},
		{"-5", 0, `cannot parse size "-5"`},
		{"1M", 0, "at least 16 MiB"},
		{"100000000T", 0, "too large"},
		{"17000001B", 0, "multiple of 4 KiB"},
	}
	for _, tt := range tests {
		got, err := parseMemSize(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseMemSize(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseMemSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-kernel", "k", "--initrd=i", "-append", "a b", "-m", "1G", "-smp", "cpus=3",
		"-cpu", "host,-x2apic", "-serial", "file:/tmp/x", "-nographic"})
	if err != nil {
		t.Fatal(err)
	}
	if o.kernel != "k" || o.initrd != "i" || o.cmdline != "a b" || o.memSize != 1<<30 || o.cpus != 3 ||
		len(o.cpu) != 1 || o.serial == nil || o.serial.id != serialID {
		t.Errorf("parseOptions = %+v; want every option applied", o)
	}
	d, err := parseOptions([]string{"-kernel", "k"})
	if err != nil || d.memSize != 256<<20 || d.cpus != 1 || d.serial == nil || !d.serial.stdio {
		t.Errorf("defaults = %+v, %v; want 256 MiB, 1 vCPU, stdio", d, err)
	}
	for _, bad := range [][]string{{"-smp", "1,sockets=2", "-kernel", "k"}, {"-kernel", "k", "-serial", "file:"}} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("parseOptions(%q) = nil error; want one", bad)
		}
	}
}

// TestDeviceForms: QEMU's id= and bus=ID.0, several virtio-serial
// controllers each with its own ports, and the refusals.
func TestDeviceForms(t *testing.T) {
	base := []string{"-kernel", "k", "-chardev", "null,id=a", "-chardev", "null,id=b", "-chardev", "null,id=c"}
	o, err := parseOptions(append(base,
		"-device", "virtio-serial-pci,id=vs0,max_ports=4",
		"-device", "virtio-serial-device,id=vs1",
		"-device", "virtserialport,id=p1,bus=vs1.0,chardev=a,name=a",
		"-device", "virtconsole,bus=vs0.0,chardev=b",
		"-device", "virtserialport,chardev=c,name=c"))
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := o.devices.build()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 2 || !cfgs[0].PCI || cfgs[1].PCI || cfgs[0].ID != "vs0" || cfgs[0].Cfg.MaxPorts != 4 {
		t.Fatalf("build() = %+v; want vs0 (PCI, max_ports 4) then vs1 (mmio)", cfgs)
	}
	names := func(i int) (s []string) {
		for _, p := range cfgs[i].Cfg.Ports {
			s = append(s, p.Backend.ID())
		}
		return s
	}
	// No bus= means the first controller, as in QEMU.
	if got := strings.Join(names(0), ","); got != "b,c" {
		t.Errorf("vs0 ports = %s; want b,c", got)
	}
	if got := strings.Join(names(1), ","); got != "a" {
		t.Errorf("vs1 ports = %s; want a", got)
	}

	bad := []struct {
		args []string
		want string
	}{
		{[]string{"-device", "virtio-serial,id=vs0", "-device", "virtserialport,bus=vs0,chardev=a"}, `bus=vs0: a virtio-serial device's bus is its id plus ".0" (bus=vs0.0)`},
		{[]string{"-device", "virtio-serial,id=vs0", "-device", "virtserialport,bus=vs9.0,chardev=a"}, "bus=vs9.0: no virtio-serial device has that bus"},
		{[]string{"-device", "virtio-serial,id=vs0", "-device", "virtio-serial-device,id=vs0"}, `id "vs0" is already used by a -device virtio-serial`},
		{[]string{"-device", "virtio-serial,id=0vs"}, `id="0vs": an id starts with a letter`},
		{[]string{"-device", "virtio-serial,id=vs0", "-device", "virtio-serial,id=vs1",
			"-device", "virtserialport,bus=vs0.0,chardev=a,name=x", "-device", "virtserialport,bus=vs1.0,chardev=b,name=x"}, `port name "x" is already in use`},
		{[]string{"-device", "pvpanic,ioport=0x600"}, "ioport=0x600: only 0x505"},
		{[]string{"-device", "virtserialport,chardev=a"}, "needs a -device virtio-serial"},
	}
	for _, tt := range bad {
		o, err := parseOptions(append(base, tt.args...))
		if err == nil {
			_, err = o.devices.build()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("options %q: error %v; want one containing %q", tt.args, err, tt.want)
		}
	}
}

// TestParseSerial: each QEMU -serial form becomes the chardev backend
// it names (or a reference to a -chardev), and the rest are refused.
func TestParseSerial(t *testing.T) {
	tests := []struct {
		in      string
		backend string // the chardev backend's Go type
		stdio   bool
		ref     string
		wantErr string
	}{
		{"stdio", "*chardev.Stdio", true, "", ""},
		{"mon:stdio", "*chardev.Stdio", true, "", ""},
		{"null", "*chardev.Null", false, "", ""},
		{"none", "", false, "", ""},
		{"file:/tmp/a,b", "*chardev.File", false, "", ""},
		{"pipe:/tmp/p", "*chardev.Pipe", false, "", ""},
		{"pty", "*chardev.Pty", false, "", ""},
		{"unix:/tmp/s.sock,server,nowait", "*chardev.Socket", false, "", ""},
		{"unix:/tmp/s.sock,server=on,wait=off", "*chardev.Socket", false, "", ""},
		{"tcp:127.0.0.1:4444,server,nowait", "*chardev.Socket", false, "", ""},
		{"tcp:[::1]:4444", "*chardev.Socket", false, "", ""},
		{"chardev:c0", "", false, "c0", ""},
		{"chardev:", "", false, "", "needs an id"},
		{"tcp:4444", "", false, "", "want tcp:HOST:PORT"},
		{"tcp:h:notaport", "", false, "", "port=notaport is not a port number"},
		{"unix:", "", false, "", "path= is empty (give the unix socket's file name"},
		{"udp:1.2.3.4:5", "", false, "", "unknown or unsupported backend"},
		{"vc", "", false, "", "unknown or unsupported backend"},
		{"/dev/ttyS0", "", false, "", "unknown or unsupported backend"},
		{"unix:/tmp/s,reconnect=1,server", "", false, "", "reconnect=1: only for a client"},
	}
	for _, tt := range tests {
		spec, ref, err := parseSerial(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "-serial "+tt.in) {
				t.Errorf("parseSerial(%q) = %v; want an error starting -serial %s and containing %q", tt.in, err, tt.in, tt.wantErr)
			}
			continue
		}
		if err != nil || ref != tt.ref {
			t.Errorf("parseSerial(%q) = ref %q, %v; want ref %q", tt.in, ref, err, tt.ref)
			continue
		}
		got := ""
		if spec != nil {
			got = fmt.Sprintf("%T", spec.backend)
			if spec.stdio != tt.stdio || spec.id != serialID {
				t.Errorf("parseSerial(%q): stdio %v, id %q; want %v, %q", tt.in, spec.stdio, spec.id, tt.stdio, serialID)
			}
		}
		if got != tt.backend {
			t.Errorf("parseSerial(%q) backend = %s; want %s", tt.in, got, tt.backend)
		}
	}
}

// TestStdioOwner: the terminal has one owner. COM1 defaults to stdio,
// or to nothing when a -chardev stdio has the terminal.
func TestStdioOwner(t *testing.T) {
	o, err := parseOptions([]string{"-kernel", "k", "-chardev", "stdio,id=con"})
	if err != nil || o.serial != nil {
		t.Errorf("-chardev stdio alone: serial %+v, %v; want COM1 without a backend", o.serial, err)
	}
	o, err = parseOptions([]string{"-kernel", "k", "-chardev", "stdio,id=con", "-serial", "chardev:con"})
	if err != nil || o.serial == nil || o.serial.id != "con" {
		t.Errorf("-serial chardev:con: %+v, %v; want COM1 on the stdio chardev", o, err)
	}
	for _, args := range [][]string{
		{"-chardev", "stdio,id=a", "-chardev", "stdio,id=b"},
		{"-chardev", "stdio,id=a", "-serial", "mon:stdio"},
	} {
		if _, err := parseOptions(append([]string{"-kernel", "k"}, args...)); err == nil || !strings.Contains(err.Error(), "stdio is used twice") {
			t.Errorf("parseOptions(%q) = %v; want stdio is used twice", args, err)
		}
	}
}

// TestAcceptedOptions: what QEMU users type out of habit is taken, each
// doing what it means here.
func TestAcceptedOptions(t *testing.T) {
	o, err := parseOptions([]string{"-kernel", "k", "-no-reboot", "-display", "none", "-vga", "none", "-nographic",
		"-enable-kvm", "-accel", "kvm", "-machine", "q35,accel=kvm,usb=off,vmport=off,dump-guest-core=off",
		"-name", "guest=web1,debug-threads=on", "-pidfile", "/tmp/p", "-no-user-config",
		"-smp", "2,sockets=1,cores=2,threads=1", "-action", "panic=none"})
	if err != nil {
		t.Fatal(err)
	}
	if o.name != "web1" || o.pidfile != "/tmp/p" || o.cpus != 2 || o.microvm || !o.acpi || o.panicAction != "none" {
		t.Errorf("parseOptions = %+v; want name web1, pidfile, 2 vCPUs, PCI, ACPI, panic=none", o)
	}
	o, err = parseOptions([]string{"-kernel", "k", "-nodefaults"})
	if err != nil || o.serial != nil {
		t.Errorf("-nodefaults: serial %+v, %v; want COM1 without a backend", o.serial, err)
	}
	o, err = parseOptions([]string{"-kernel", "k", "-nodefaults", "-serial", "stdio"})
	if err != nil || o.serial == nil {
		t.Errorf("-nodefaults -serial stdio: serial %+v, %v; want stdio", o.serial, err)
	}
	o, err = parseOptions([]string{"-kernel", "k", "-M", "microvm,acpi=off", "-device", "virtio-serial"})
	if err != nil || !o.microvm || o.acpi || o.devices.buses[0].pci {
		t.Errorf("-M microvm -device virtio-serial: %+v, %v; want virtio-mmio, no ACPI", o, err)
	}
	if o, err := parseOptions([]string{"-kernel", "k"}); err != nil || o.panicAction != "exit-failure" {
		t.Errorf("default panic action = %q, %v; want exit-failure", o.panicAction, err)
	}
}

// TestParseSMP: the vCPU count, alone or with a topology that must
// agree with it and be one socket of single-thread cores.
func TestParseSMP(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{"4", 4, ""},
		{"cpus=3", 3, ""},
		{"2,sockets=1,cores=2,threads=1", 2, ""},
		{"sockets=1,cores=4", 4, ""},
		{"cores=3", 3, ""},
		{"2,maxcpus=2", 2, ""},
		{"2,dies=1,cores=2", 2, ""},
		{"0", 0, "at least one vCPU"},
		{"two", 0, "not a number of vCPUs"},
		{"4,sockets=1,cores=2,threads=1", 0, "sockets × dies × cores × threads = 2, but cpus=4"},
		{"4,sockets=2,cores=2", 0, "sockets=2: the guest sees one socket of 4 cores"},
		{"2,cores=1,threads=2", 0, "threads=2: the guest sees one socket"},
		{"2,maxcpus=4", 0, "maxcpus=4: CPU hotplug is not supported"},
		{"2,books=1", 0, `unknown property "books"`},
		{"2,cores=x", 0, "cores=x is not a number"},
		{"2,cores=0", 0, "cores=0 must be at least 1"},
	}
	for _, tt := range tests {
		got, err := parseSMP(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseSMP(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseSMP(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

// TestRefusedOptions: what vmm does not do is refused with one line
// saying so, never accepted and ignored.
func TestRefusedOptions(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-daemonize", "-serial", "stdio"}, "-daemonize: -serial stdio would need the terminal vmm leaves"},
		{[]string{"-daemonize", "-chardev", "stdio,id=c"}, "-daemonize: -chardev stdio,id=c would need the terminal vmm leaves"},
		{[]string{"-incoming", "tcp:0:4444"}, "-incoming tcp:0:4444: only file:PATH is supported"},
		{[]string{"-snapshot"}, "-snapshot is not supported"},
		{[]string{"-display", "gtk"}, "-display gtk: vmm has no display"},
		{[]string{"-vga", "std"}, "-vga std: vmm has no display"},
		{[]string{"-accel", "tcg"}, `accelerator "tcg" is not supported: vmm runs on KVM only`},
		{[]string{"-machine", "accel=tcg"}, `-machine accel=tcg: accelerator "tcg" is not supported`},
		{[]string{"-machine", "virt"}, `unknown machine type "virt" (want pc, q35 or microvm)`},
		{[]string{"-machine", "q35,smm=on"}, `unsupported property "smm=on"`},
		{[]string{"-M", "microvm", "-device", "virtio-serial-pci"}, "-M microvm has no PCI bus (use -device virtio-serial-device"},
		{[]string{"-M", "microvm", "-device", "pvpanic-pci"}, "-device pvpanic-pci: -M microvm has no PCI bus"},
		{[]string{"-device", "pvpanic-pci", "-device", "pvpanic-pci"}, "-device pvpanic-pci: given twice"},
		{[]string{"-device", "pvpanic-pci,ioport=0x505"}, "ioport"},
		{[]string{"-name", ""}, "the name is empty"},
		{[]string{"-name", "guest=a,colour=b"}, `unknown property "colour"`},
		{[]string{"-pidfile", ""}, "-pidfile: the file name is empty"},
		{[]string{"-action", "panic=explode"}, "panic=explode: want exit-failure, shutdown, pause or none"},
		{[]string{"-action", "watchdog=reset"}, `"watchdog=reset" is not supported`},
		{[]string{"-frobnicate"}, `unknown option "-frobnicate" (vmm run --help lists the options)`},
	}
	for _, tt := range tests {
		_, err := parseOptions(append([]string{"-kernel", "k"}, tt.args...))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseOptions(%q) = %v; want one line containing %q", tt.args, err, tt.want)
		}
	}
}

// TestChardevRefusals: chardev properties that would be accepted and
// ignored, or that lead to a confusing failure later, are refused now.
func TestChardevRefusals(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"socket,id=a,path=/tmp/s,server=on,mux=on", "mux= is supported on stdio only"},
		{"socket,id=a,path=,server=on", "path= is empty"},
		{"file,id=a,path=", "-chardev file: path= is empty"},
		{"pipe,id=a", "-chardev pipe: path= is required"},
		{"ringbuf,id=a,size=0", "size=0 must be a power of two"},
		{"ringbuf,id=a,size=3K", "size=3072 must be a power of two"},
		{"stdio,id=a,mux=maybe", "mux=maybe: want on or off"},
		{"stdio,id=a,logfile=/tmp/x", `unknown property "logfile"`},
		{"udp,id=a,host=h,port=1", "-chardev udp: unknown backend"},
	} {
		if _, err := parseChardev(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseChardev(%q) = %v; want an error containing %q", tt.in, err, tt.want)
		}
	}
	if c, err := parseChardev("stdio,id=a,mux=on,signal=off"); err != nil || !c.stdio {
		t.Errorf("parseChardev(stdio,mux=on) = %+v, %v; want a stdio chardev", c, err)
	}
}

// TestHostMessages: the messages for memory that does not fit speak in
// -m sizes, never guest addresses.
func TestHostMessages(t *testing.T) {
	for _, tt := range []struct {
		n    uint64
		want string
	}{{1 << 30, "1G"}, {1536 << 20, "1.5G"}, {256 << 20, "256M"}, {100000 << 30, "100000G"}} {
		if got := sizeString(tt.n); got != tt.want {
			t.Errorf("sizeString(%d) = %s; want %s", tt.n, got, tt.want)
		}
	}
	if got := suggestMem(24 << 30); got != "12G" {
		t.Errorf("suggestMem(24G) = %s; want 12G", got)
	}
	o := &options{memSize: 32 << 20}
	err := explainFit(fmt.Errorf("load: %w", vmmboot.ErrInitrdTooLarge), o, 1<<20, 40<<20)
	want := "-m 32M: the kernel and the initrd (40M) do not fit in guest memory: give more, e.g. -m 256M"
	if err == nil || err.Error() != want || strings.Contains(err.Error(), "0x") {
		t.Errorf("explainFit = %v; want %q", err, want)
	}
	var oe optionError
	if !errors.As(err, &oe) {
		t.Errorf("explainFit error is not an option error (exit status 2)")
	}
	other := errors.New("something else")
	if got := explainFit(other, o, 0, 0); got != other {
		t.Errorf("explainFit(other) = %v; want it unchanged", got)
	}
}
