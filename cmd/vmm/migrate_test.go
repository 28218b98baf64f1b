package main

import (
	"strings"
	"testing"
)

func TestParseIncoming(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"file:/tmp/vm.snap", "/tmp/vm.snap", ""},
		{"file:rel/vm.snap", "rel/vm.snap", ""},
		{"file:", "", "only file:PATH is supported"},
		{"tcp:0:4444", "", "only file:PATH is supported"},
		{"exec:cat x", "", "only file:PATH is supported"},
		{"defer", "", "only file:PATH is supported"},
	}
	for _, tt := range tests {
		got, err := parseIncoming(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("parseIncoming(%q) = %q, %v; want %q, error containing %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestMachineIdentity: what a snapshot must match changes with the
// machine, CPU model and devices, and not with chardevs (re-made from
// each command line).
func TestMachineIdentity(t *testing.T) {
	identity := func(args ...string) string {
		t.Helper()
		o, err := parseOptions(append([]string{"-kernel", "k"}, args...))
		if err != nil {
			t.Fatalf("parseOptions(%q): %v", args, err)
		}
		cfgs, err := o.devices.build()
		if err != nil {
			t.Fatalf("build(%q): %v", args, err)
		}
		return machineIdentity(o, cfgs)
	}
	port := func(path string) []string {
		return []string{"-device", "virtio-serial-pci", "-chardev", "socket,id=c,path=" + path + ",server=on,wait=off",
			"-device", "virtserialport,chardev=c,name=p"}
	}
	base := identity(port("/a.sock")...)
	if got := identity(port("/elsewhere.sock")...); got != base {
		t.Errorf("identity with another socket path = %q; want %q (chardevs are not part of it)", got, base)
	}
	for _, other := range [][]string{
		append(port("/a.sock"), "-M", "q35,acpi=off"),
		append(port("/a.sock"), "-cpu", "host,-x2apic"),
		append(port("/a.sock"), "-chardev", "null,id=d", "-device", "virtconsole,chardev=d"),
		{"-device", "virtio-serial-pci", "-chardev", "null,id=c", "-device", "virtserialport,chardev=c,name=q"},
		{"-device", "virtio-serial-device", "-chardev", "null,id=c", "-device", "virtserialport,chardev=c,name=p"},
		{"-device", "virtio-serial-pci,max_ports=4", "-chardev", "null,id=c", "-device", "virtserialport,chardev=c,name=p"},
	} {
		if got := identity(other...); got == base {
			t.Errorf("identity(%q) = %q, the same as for a different machine", other, got)
		}
	}
}
