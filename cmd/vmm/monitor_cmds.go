package main

// QMP commands for the VM's run state and its CPUs.

import (
	"strconv"
	"time"

	"vmm/qmp"
)

type noArgs struct{}

// register adds every command vmm implements.
func (mon *monitor) register() {
	s := mon.srv
	qmp.Handle(s, "query-status", mon.queryStatus)
	qmp.Handle(s, "stop", mon.stopCmd)
	qmp.Handle(s, "cont", mon.cont)
	qmp.Handle(s, "system_reset", mon.systemReset)
	qmp.Handle(s, "system_powerdown", mon.systemPowerdown)
	qmp.Handle(s, "quit", mon.quit)
	qmp.Handle(s, "query-cpus-fast", mon.queryCPUs)
	qmp.Handle(s, "query-name", mon.queryName)
	qmp.Handle(s, "query-chardev", mon.queryChardev)
	qmp.Handle(s, "chardev-add", mon.chardevAdd)
	qmp.Handle(s, "chardev-remove", mon.chardevRemove)
	qmp.Handle(s, "ringbuf-read", mon.ringbufRead)
	qmp.Handle(s, "ringbuf-write", mon.ringbufWrite)
	qmp.Handle(s, "device_add", mon.deviceAdd)
	qmp.Handle(s, "device_del", mon.deviceDel)
	qmp.Handle(s, portStatsCommand, mon.queryPortStats)
	qmp.Handle(s, serialQueryCommand, mon.querySerial)
	qmp.Handle(s, vcpuQueryCommand, mon.queryVCPUs)
}

func (mon *monitor) queryStatus(*qmp.Call, *noArgs) (any, error) {
	status := "running"
	if mon.m.Paused() {
		status = "paused"
		if mon.postmigrate() {
			status = "postmigrate"
		}
	}
	return map[string]any{"running": status == "running", "singlestep": false, "status": status}, nil
}

// stopCmd pauses the VM: it returns once no vCPU runs guest code.
// STOP comes before the reply, as in QEMU.
func (mon *monitor) stopCmd(*qmp.Call, *noArgs) (any, error) {
	if mon.m.Pause() {
		mon.srv.Emit("STOP", nil)
	}
	return nil, nil
}

func (mon *monitor) cont(*qmp.Call, *noArgs) (any, error) {
	if mon.m.Resume() {
		mon.endPostmigrate()
		mon.srv.Emit("RESUME", nil)
	}
	return nil, nil
}

// systemReset ends the VM: vmm treats every reset as QEMU's -no-reboot
// does (a guest reset ends the VM too), and QEMU with -no-reboot answers
// system_reset with a SHUTDOWN whose reason is host-qmp-system-reset.
func (mon *monitor) systemReset(c *qmp.Call, _ *noArgs) (any, error) {
	mon.endByHost(c, "host-qmp-system-reset")
	return nil, nil
}

// systemPowerdown presses the ACPI power button (the Generic Event
// Device's event, see machine.PowerButton) and emits POWERDOWN after
// the reply, as QEMU does. What follows is the guest's business: one
// that powers off through ACPI S5 ends the VM with SHUTDOWN {guest:
// true, reason: guest-shutdown}; one that ignores the button keeps
// running. A paused guest sees the press once resumed. Without ACPI
// (-machine acpi=off) there is no button: the event is still emitted,
// as QEMU's is.
func (mon *monitor) systemPowerdown(c *qmp.Call, _ *noArgs) (any, error) {
	c.After(func() {
		mon.srv.Emit("POWERDOWN", nil)
		mon.m.PowerButton()
	})
	return nil, nil
}

func (mon *monitor) quit(c *qmp.Call, _ *noArgs) (any, error) {
	mon.endByHost(c, "host-qmp-quit")
	return nil, nil
}

// endByHost ends the VM once the command's reply is queued, so the
// client reads the reply before SHUTDOWN.
func (mon *monitor) endByHost(c *qmp.Call, reason string) {
	mon.mu.Lock()
	if mon.hostReason == "" {
		mon.hostReason = reason
	}
	mon.mu.Unlock()
	c.After(func() {
		mon.stop("QMP " + reason)
		// The client that asked gets SHUTDOWN too: its session stays
		// until the event is queued, even if it has sent EOF already.
		select {
		case <-mon.endedCh:
		case <-time.After(5 * time.Second):
		}
	})
}

func (mon *monitor) queryCPUs(*qmp.Call, *noArgs) (any, error) {
	tids := mon.m.VCPUThreads()
	out := []map[string]any{}
	for i, tid := range tids {
		out = append(out, map[string]any{
			"cpu-index": i,
			"qom-path":  "/machine/unattached/device[" + strconv.Itoa(i) + "]",
			"thread-id": tid,
			"props":     map[string]int{"core-id": i, "thread-id": 0, "socket-id": 0},
			"target":    "x86_64",
		})
	}
	return out, nil
}

func (mon *monitor) queryName(*qmp.Call, *noArgs) (any, error) {
	if mon.o.name == "" {
		return map[string]any{}, nil
	}
	return map[string]any{"name": mon.o.name}, nil
}
