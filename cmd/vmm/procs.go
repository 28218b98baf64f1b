package main

import (
	"os"
	"runtime"
)

// setProcs gives the Go scheduler a P to spare beyond the goroutines
// that block in syscalls: one per vCPU (KVM_RUN) and the event loop
// (epoll_wait). With every P in a syscall, the runtime's monitor takes
// each P back 20 µs into a call and hands it to another thread, so the
// loop woke on a different thread every time (perf: a guest→host
// transfer's loop work spread over three threads, with futex wake-ups
// and context switches costing more than its copies). With a P idle,
// the monitor leaves a P in a syscall alone for 10 ms and the thread
// returning from it keeps its own. A GOMAXPROCS the user set wins.
func setProcs(vcpus int) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	if n := vcpus + 2; n > runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
	}
}
