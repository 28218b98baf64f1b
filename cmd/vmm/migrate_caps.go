package main

// Migration capabilities, QEMU's way: every capability QEMU 7.2 lists,
// each off until migrate-set-capabilities turns it on. vmm acts on one,
// "events" (MIGRATION events are sent only with it, as in QEMU, so a
// client that did not ask sees none); turning on any other is refused,
// since vmm would not do what it promises. Turning one off always works.

import (
	"slices"

	"vmm/qmp"
)

// migrationCapabilities is QEMU 7.2's MigrationCapability enum, in its
// order (query-migrate-capabilities lists them so).
var migrationCapabilities = []string{
	"xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
	"postcopy-ram", "x-colo", "release-ram", "block", "return-path", "pause-before-switchover",
	"multifd", "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "x-ignore-shared",
	"validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
}

// supportedCapabilities are those vmm can turn on.
var supportedCapabilities = []string{"events"}

type capabilityStatus struct {
	Capability string `json:"capability"`
	State      *bool  `json:"state"`
}

type setCapabilitiesArgs struct {
	Capabilities []capabilityStatus `json:"capabilities"`
}

// Validate checks every entry before any takes effect, with QEMU's words
// for a missing member or an unknown name.
func (a *setCapabilitiesArgs) Validate() error {
	for i, c := range a.Capabilities {
		switch {
		case c.Capability == "":
			return qmp.Errorf(qmp.GenericError, "Parameter 'capabilities[%d].capability' is missing", i)
		case c.State == nil:
			return qmp.Errorf(qmp.GenericError, "Parameter 'capabilities[%d].state' is missing", i)
		case !slices.Contains(migrationCapabilities, c.Capability):
			return qmp.Errorf(qmp.GenericError, "Parameter 'capability' does not accept value '%s'", c.Capability)
		case *c.State && !slices.Contains(supportedCapabilities, c.Capability):
			return qmp.Errorf(qmp.GenericError, "Migration capability '%s' is not supported by vmm (it saves to a file, and supports: %v)",
				c.Capability, supportedCapabilities)
		}
	}
	return nil
}

// registerMigrateCapabilities adds migrate-set-capabilities and
// query-migrate-capabilities.
func (mon *monitor) registerMigrateCapabilities() {
	qmp.Handle(mon.srv, "migrate-set-capabilities", mon.setMigrateCapabilities)
	qmp.Handle(mon.srv, "query-migrate-capabilities", mon.queryMigrateCapabilities)
}

func (mon *monitor) setMigrateCapabilities(_ *qmp.Call, a *setCapabilitiesArgs) (any, error) {
	mg := mon.migration()
	mg.mu.Lock()
	defer mg.mu.Unlock()
	for _, c := range a.Capabilities {
		if c.Capability == "events" {
			mg.events = *c.State
		}
	}
	return struct{}{}, nil
}

func (mon *monitor) queryMigrateCapabilities(*qmp.Call, *noArgs) (any, error) {
	mg := mon.migration()
	mg.mu.Lock()
	defer mg.mu.Unlock()
	out := make([]map[string]any, 0, len(migrationCapabilities))
	for _, name := range migrationCapabilities {
		out = append(out, map[string]any{"capability": name, "state": name == "events" && mg.events})
	}
	return out, nil
}

// emitMigration sends a MIGRATION event if the client turned on the
// "events" capability.
func (mon *monitor) emitMigration(status string) {
	mg := mon.migration()
	mg.mu.Lock()
	on := mg.events
	mg.mu.Unlock()
	if on {
		mon.srv.Emit("MIGRATION", map[string]string{"status": status})
	}
}
