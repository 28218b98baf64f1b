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
