package main

// Snapshots (#13): QMP `migrate` to "file:PATH" saves the VM (paused for
// the save, and left paused, as after a QEMU migration), `query-migrate`
// and MIGRATION events report it QEMU's way, and `vmm run -incoming
// file:PATH` with the same -m, -smp, -M, -cpu and -device options builds
// the VM from the file. Chardevs are not in the file: they are made
// again from this command line.

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"vmm/machine"
	"vmm/qmp"
	"vmm/snapshot"
)

// parseIncoming reads -incoming's URI: only file:PATH.
func parseIncoming(v string) (string, error) {
	path, ok := strings.CutPrefix(v, "file:")
	if !ok || path == "" {
		return "", fmt.Errorf("-incoming %s: only file:PATH is supported (a snapshot written by QMP migrate {\"uri\": \"file:PATH\"})", v)
	}
	return path, nil
}

// machineIdentity describes what a snapshot must have been saved from,
// besides -m and -smp: the machine type, the CPU model changes, and
// every virtio-serial controller with its ports. Chardevs are left out
// on purpose: they are re-created, and may differ (another socket path).
func machineIdentity(o *options, cfgs []serialBusConfig) string {
	var b strings.Builder
	kind := "pc"
	if o.microvm {
		kind = "microvm"
	}
	fmt.Fprintf(&b, "-M %s,acpi=%v", kind, o.acpi)
	if len(o.cpu) > 0 {
		fmt.Fprintf(&b, " -cpu %v", o.cpu)
	}
	for _, c := range cfgs {
		driver := "virtio-serial-device"
		if c.PCI {
			driver = "virtio-serial-pci"
		}
		fmt.Fprintf(&b, " -device %s,max_ports=%d", driver, c.Cfg.MaxPorts)
		for _, p := range c.Cfg.Ports {
			driver := "virtserialport"
			if p.Console {
				driver = "virtconsole"
			}
			fmt.Fprintf(&b, " -device %s,nr=%d,name=%q,drop=%v,limit=%d", driver, p.Nr, p.Name, p.DropDisconnected, p.Limit)
		}
	}
	if o.devices.pvpanicPCI {
		b.WriteString(" -device pvpanic-pci")
	}
	return b.String()
}

// openIncoming opens and checks the snapshot for -incoming; every
// refusal is one line naming the mismatch.
func openIncoming(o *options, cfgs []serialBusConfig) (*snapshot.File, error) {
	return snapshot.Open(o.incoming, snapshot.Identity{MemSize: o.memSize, CPUs: o.cpus, Machine: machineIdentity(o, cfgs)})
}

// migration is the state behind query-migrate: the last migrate's.
type migration struct {
	mu sync.Mutex
	// The fields below are guarded by mu.
	status  string // "" before any migrate
	errDesc string
	events  bool // the "events" capability: MIGRATION events are sent
	// postmigrate: the last save completed and the VM has not run since
	// (query-status says "postmigrate"; another migrate is refused).
	postmigrate            bool
	total, setup, downtime time.Duration
	size, memSize          int64
}

func (mon *monitor) migration() *migration { return &mon.mig }

// registerMigrate adds migrate and query-migrate.
func (mon *monitor) registerMigrate() {
	qmp.Handle(mon.srv, "migrate", mon.migrate)
	qmp.Handle(mon.srv, "query-migrate", mon.queryMigrate)
	mon.registerMigrateCapabilities()
}

type migrateArgs struct {
	URI    string `json:"uri"`
	Blk    bool   `json:"blk,omitempty"`
	Inc    bool   `json:"inc,omitempty"`
	Detach bool   `json:"detach,omitempty"`
	Resume bool   `json:"resume,omitempty"`
}

// migrate saves the VM to a file. As in QEMU, a URI vmm does not take is
// refused at once (GenericError), and the rest is reported by the
// MIGRATION events (with the "events" capability) and query-migrate:
// setup, active, then completed or failed. A running VM is paused (STOP)
// for the save and stays paused, in the run state QEMU calls
// "postmigrate", which refuses another migrate until `cont` resumes it.
// After a failed save a VM that was running runs again (RESUME), as in
// QEMU. The save runs before the reply (the monitor's commands are
// serialized, so no `cont` can come in the middle); the final event
// follows the reply.
func (mon *monitor) migrate(c *qmp.Call, a *migrateArgs) (any, error) {
	path, ok := strings.CutPrefix(a.URI, "file:")
	switch {
	case !ok || path == "":
		return nil, qmp.Errorf(qmp.GenericError, "Parameter 'uri' expects a valid migration protocol (vmm takes file:PATH)")
	case a.Blk || a.Inc:
		return nil, qmp.Errorf(qmp.GenericError, "Block migration is not supported by vmm (it has no disks)")
	case a.Resume:
		return nil, qmp.Errorf(qmp.GenericError, "Cannot resume if there is no paused migration")
	}
	mg := mon.migration()
	mg.mu.Lock()
	again := mg.postmigrate
	mg.mu.Unlock()
	if again {
		return nil, qmp.Errorf(qmp.GenericError, "Can't migrate the vm that was paused due to previous migration")
	}
	start := time.Now()
	mon.emitMigration("setup")
	running := !mon.m.Paused()
	if running && mon.m.Pause() {
		mon.srv.Emit("STOP", nil)
	}
	mon.emitMigration("active")
	paused := time.Now()
	size, err := mon.m.Snapshot(path, strings.TrimPrefix(version(), "vmm "), mon.identity, running)
	end := time.Now()
	mg.mu.Lock()
	mg.total, mg.setup, mg.downtime = end.Sub(start), paused.Sub(start), end.Sub(paused)
	mg.size, mg.memSize = size, int64(mon.o.memSize)
	status := "completed"
	mg.errDesc = ""
	if err != nil {
		status, mg.errDesc = "failed", err.Error()
	}
	mg.status = status
	mg.postmigrate = err == nil
	mg.mu.Unlock()
	c.After(func() {
		mon.emitMigration(status)
		// A failed save gives the VM back as it was, as QEMU does.
		if err != nil && running && mon.m.Resume() {
			mon.srv.Emit("RESUME", nil)
		}
	})
	return nil, nil
}

// queryMigrate answers with QEMU's MigrationInfo: {} before any
// migrate; completed with its times and RAM figures; failed with
// error-desc.
func (mon *monitor) queryMigrate(*qmp.Call, *noArgs) (any, error) {
	mg := mon.migration()
	mg.mu.Lock()
	defer mg.mu.Unlock()
	switch mg.status {
	case "":
		return struct{}{}, nil
	case "failed":
		return map[string]any{"status": "failed", "error-desc": mg.errDesc}, nil
	}
	pages := mg.memSize / snapshot.PageSize
	return map[string]any{
		"status":     mg.status,
		"total-time": mg.total.Milliseconds(),
		"setup-time": mg.setup.Milliseconds(),
		"downtime":   mg.downtime.Milliseconds(),
		"ram": map[string]any{
			"transferred": mg.size, "remaining": 0, "total": mg.memSize,
			"duplicate": 0, "skipped": 0, "normal": pages, "normal-bytes": mg.memSize,
			"dirty-sync-count": 1, "page-size": snapshot.PageSize, "mbps": mbps(mg.size, mg.downtime),
			"dirty-pages-rate": 0, "postcopy-requests": 0, "multifd-bytes": 0, "pages-per-second": 0,
			"precopy-bytes": mg.size, "downtime-bytes": mg.size, "postcopy-bytes": 0,
		},
	}, nil
}

func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / 1e6 / d.Seconds()
}

// postmigrate reports whether the VM is paused after a completed save.
func (mon *monitor) postmigrate() bool {
	mg := mon.migration()
	mg.mu.Lock()
	defer mg.mu.Unlock()
	return mg.postmigrate
}

// endPostmigrate is the VM running again after a save.
func (mon *monitor) endPostmigrate() {
	mg := mon.migration()
	mg.mu.Lock()
	mg.postmigrate = false
	mg.mu.Unlock()
}

// restoredPaused reports whether a restored VM starts paused: with -S,
// or when it was saved paused (QEMU's rule).
func restoredPaused(o *options, f *snapshot.File) bool {
	return o.startPaused || !machine.SavedRunning(f)
}
