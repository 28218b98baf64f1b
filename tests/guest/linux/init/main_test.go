//go:build linux && amd64

package main

import "testing"

func TestCountCPUList(t *testing.T) {
	for _, tc := range []struct {
		list string
		want int
	}{
		{"0", 1},
		{"0-1", 2},
		{"0-3,6", 5},
		{"0,2,4-5", 4},
	} {
		if got, err := countCPUList(tc.list); err != nil || got != tc.want {
			t.Errorf("countCPUList(%q) = %d, %v; want %d, nil", tc.list, got, err, tc.want)
		}
	}
	for _, bad := range []string{"x", "3-1", "0-y"} {
		if _, err := countCPUList(bad); err == nil {
			t.Errorf("countCPUList(%q) = nil error; want an error", bad)
		}
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct{ cmdline, want string }{
		{"console=ttyS0 quiet", "marker"},
		{"console=ttyS0 vmm.cmd=exit=3\n", "exit=3"},
		{"vmm.cmd=ports vmm.cmd=marker", "marker"},
	} {
		if got := parseCommand(tc.cmdline); got != tc.want {
			t.Errorf("parseCommand(%q) = %q; want %q", tc.cmdline, got, tc.want)
		}
	}
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		cmd    string
		status int
		ok     bool
	}{
		{"marker", 0, true},
		{"exit=3", 3, true},
		{"exit=255", 255, true},
		{"exit=256", failStatus, false},
		{"exit=-1", failStatus, false},
		{"bogus", failStatus, false},
	} {
		status, err := run(tc.cmd)
		if status != tc.status || (err == nil) != tc.ok {
			t.Errorf("run(%q) = %d, %v; want %d, ok=%v", tc.cmd, status, err, tc.status, tc.ok)
		}
	}
}
