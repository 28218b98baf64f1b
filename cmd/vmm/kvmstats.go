package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"vmm/machine"
)

// statsEnv names a file to which vmm writes KVM's vCPU statistics
// (summed over vCPUs, one "name value" line each) when the VM ends:
// `make bench` reads VM exits from it.
const statsEnv = "VMM_KVM_STATS"

// writeKVMStats writes the statistics file statsEnv names, if any.
func writeKVMStats(m *machine.Machine) {
	path := os.Getenv(statsEnv)
	if path == "" {
		return
	}
	var b strings.Builder
	s, err := m.KVMStats()
	if err != nil {
		fmt.Fprintf(&b, "error %v\n", err)
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d\n", k, s[k])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		slog.Warn("cannot write KVM stats", "env", statsEnv, "err", err)
	}
}
