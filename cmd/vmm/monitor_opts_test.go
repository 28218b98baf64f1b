package main

import (
	"strings"
	"testing"

	"vmm/machine"
)

func TestParseMonitors(t *testing.T) {
	tests := []struct {
		option, value string
		want          monitorSpec // option field ignored
		err           string
	}{
		{"qmp", "unix:/tmp/q.sock,server=on,wait=off", monitorSpec{network: "unix", addr: "/tmp/q.sock"}, ""},
		{"qmp", "unix:/tmp/q.sock,server,nowait", monitorSpec{network: "unix", addr: "/tmp/q.sock"}, ""},
		{"qmp", "unix:/tmp/q.sock,server=on", monitorSpec{network: "unix", addr: "/tmp/q.sock", wait: true}, ""},
		{"qmp", "tcp:127.0.0.1:4444,server=on,wait=off", monitorSpec{network: "tcp", addr: "127.0.0.1:4444"}, ""},
		{"qmp", "tcp:localhost,server=on", monitorSpec{}, "want tcp:HOST:PORT"},
		{"qmp", "unix:/tmp/q.sock", monitorSpec{}, "only server=on"},
		{"qmp", "unix:,server=on", monitorSpec{}, "path is empty"},
		{"qmp", "stdio", monitorSpec{}, "want unix:PATH"},
		{"qmp", "unix:/q,server=on,pretty=on", monitorSpec{}, "pretty"},
		{"mon", "chardev=mon0,mode=control", monitorSpec{chardev: "mon0"}, ""},
		{"mon", "chardev=mon0,mode=control,pretty=off,id=m", monitorSpec{chardev: "mon0"}, ""},
		{"mon", "chardev=mon0", monitorSpec{}, "only mode=control"},
		{"mon", "mode=control", monitorSpec{}, "chardev= is required"},
		{"mon", "chardev=m,mode=control,pretty=on", monitorSpec{}, "pretty=on"},
	}
	for _, tt := range tests {
		var o options
		err := o.addMonitor(tt.option, tt.value)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("-%s %s: error %v; want one with %q", tt.option, tt.value, err, tt.err)
			}
			continue
		}
		if err != nil || len(o.monitors) != 1 {
			t.Errorf("-%s %s: %v, %d monitors; want one", tt.option, tt.value, err, len(o.monitors))
			continue
		}
		got := o.monitors[0]
		got.option = ""
		if got != tt.want {
			t.Errorf("-%s %s = %+v; want %+v", tt.option, tt.value, got, tt.want)
		}
	}
}

func TestShutdownCause(t *testing.T) {
	tests := []struct {
		exit   machine.Exit
		guest  bool
		reason string
	}{
		{machine.Exit{Reason: "guest power off (ACPI S5)"}, true, "guest-shutdown"},
		{machine.Exit{Reason: "guest exit 0 (port 0xf4)"}, true, "guest-shutdown"},
		{machine.Exit{Reason: "vCPU 0 halted"}, true, "guest-shutdown"},
		{machine.Exit{Reason: "guest reset (i8042)"}, true, "guest-reset"},
		{machine.Exit{Reason: "vCPU 1: guest reset (triple fault)"}, true, "guest-reset"},
		{machine.Exit{Reason: "signal terminated"}, false, "host-signal"},
		{machine.Exit{Status: 1, Err: errTest}, true, "guest-panic"},
	}
	for _, tt := range tests {
		if g, r := shutdownCause(tt.exit); g != tt.guest || r != tt.reason {
			t.Errorf("shutdownCause(%+v) = %v, %q; want %v, %q", tt.exit, g, r, tt.guest, tt.reason)
		}
	}
}

var errTest = errorString("test")

type errorString string

func (e errorString) Error() string { return string(e) }
