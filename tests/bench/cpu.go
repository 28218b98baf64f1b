package main

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Where a transfer's CPU went, by thread, from the scheduler's own run
// time of each thread (/proc/PID/task/TID/sched, se.sum_exec_runtime,
// in ms with ns digits): the VM's vCPU threads, the VMM's other threads
// (its device and event-loop work), and the host peer (this process).
// Cores busy is run time over the transfer's wall time; their sum
// against the host's core count says whether the host, not the VMM,
// bounds a row.

// vcpuThread matches a vCPU thread's name: vmm's "vcpuN", QEMU's
// "CPU N/KVM" (with -name debug-threads=on).
var vcpuThread = regexp.MustCompile(`^(vcpu\d+|CPU \d+/KVM)$`)

// threadCPU is one thread's run time so far, and whether it ran a vCPU.
type threadCPU struct {
	vcpu bool
	rt   time.Duration
}

// readThreads reads each thread of process pid, by thread id.
func readThreads(pid int) map[string]threadCPU {
	ts := map[string]threadCPU{}
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, _ := os.ReadDir(dir)
	for _, t := range tasks {
		comm, _ := os.ReadFile(dir + "/" + t.Name() + "/comm")
		ts[t.Name()] = threadCPU{
			vcpu: vcpuThread.MatchString(strings.TrimSpace(string(comm))),
			rt:   schedRuntime(dir + "/" + t.Name() + "/sched"),
		}
	}
	return ts
}

// since is the run time each class of thread spent from then to now. A
// thread is a vCPU thread if it was named one at either end (vmm puts
// the thread's old name back as its vCPU stops); one that ended within
// the window is not counted, so the transfers keep their VMs running
// past the window's end.
func since(then, now map[string]threadCPU) (vcpu, other time.Duration) {
	for tid, n := range now {
		t := then[tid]
		if d := n.rt - t.rt; n.vcpu || t.vcpu {
			vcpu += d
		} else {
			other += d
		}
	}
	return vcpu, other
}

// schedRuntime is a thread's se.sum_exec_runtime (0 if unreadable).
func schedRuntime(path string) time.Duration {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "se.sum_exec_runtime") {
			continue
		}
		if i := strings.LastIndexByte(line, ':'); i >= 0 {
			ms, err := strconv.ParseFloat(strings.TrimSpace(line[i+1:]), 64)
			if err == nil {
				return time.Duration(ms * 1e6)
			}
		}
	}
	return 0
}

// cpuBusy is a transfer's CPU in cores busy over its wall time.
type cpuBusy struct {
	vcpu, other, peer float64 // cores
	otherMsPerGiB     float64 // the VMM's other threads, CPU ms per GiB moved
}

func (c cpuBusy) total() float64 { return c.vcpu + c.other + c.peer }

// cpuWindow is a transfer's start: the VM process's and this process's
// threads then.
type cpuWindow struct {
	pid      int
	vm, self map[string]threadCPU
	at       time.Time
}

// startCPU opens a window on process pid (the VMM, or the host-limit
// peer) and this process (the host peer).
func startCPU(pid int) cpuWindow {
	return cpuWindow{pid: pid, vm: readThreads(pid), self: readThreads(os.Getpid()), at: time.Now()}
}

// end closes the window after bytes were moved.
func (w cpuWindow) end(bytes int64) cpuBusy {
	vcpu, other := since(w.vm, readThreads(w.pid))
	selfV, selfO := since(w.self, readThreads(os.Getpid()))
	wall := time.Since(w.at)
	cores := func(d time.Duration) float64 { return float64(d) / float64(wall) }
	return cpuBusy{
		vcpu:          cores(vcpu),
		other:         cores(other),
		peer:          cores(selfV + selfO),
		otherMsPerGiB: float64(other) / 1e6 / (float64(bytes) / (1 << 30)),
	}
}

// hostCores is the host's core count, for the table's CPU rows.
func hostCores() int { return runtime.NumCPU() }
