package main

import (
	"strings"
	"testing"
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
		len(o.cpu) != 1 || o.serial != "file:/tmp/x" {
		t.Errorf("parseOptions = %+v; want every option applied", o)
	}
	d, err := parseOptions([]string{"-kernel", "k"})
	if err != nil || d.memSize != 256<<20 || d.cpus != 1 || d.serial != "stdio" {
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
