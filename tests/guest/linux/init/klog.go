//go:build linux && amd64

package main

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// printKernelWarnings prints each kernel log line of level warning (4)
// or worse as "vmm-init: klog LINE", then "vmm-init: klog n=N": a test
// can check a boot for warnings whatever `quiet` kept off the console.
func printKernelWarnings() {
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		logf("klog: %v", err)
		return
	}
	count := 0
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		if level, ok := klogLevel(line); ok && level <= 4 {
			logf("klog %s", line)
			count++
		}
	}
	logf("klog n=%d", count)
}

// klogLevel returns the level of a "<L>text" kernel log line (the
// facility bits above the low three removed).
func klogLevel(line string) (int, bool) {
	if !strings.HasPrefix(line, "<") {
		return 0, false
	}
	end := strings.IndexByte(line, '>')
	if end < 2 {
		return 0, false
	}
	v, err := strconv.Atoi(line[1:end])
	if err != nil {
		return 0, false
	}
	return v & 7, true
}
