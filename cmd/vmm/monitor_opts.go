package main

import (
	"fmt"
	"net"
	"strings"
)

// monitorSpec is one QMP monitor from the command line: where it
// listens, or which -chardev it listens on (resolved at start).
type monitorSpec struct {
	option  string // "-qmp unix:…" or "-mon chardev=…", for errors
	network string // "unix" or "tcp"
	addr    string
	wait    bool   // wait=on: the VM starts once a client has connected
	chardev string // -mon chardev=ID
}

// parseQMP reads `-qmp unix:PATH[,server=on][,wait=on|off]` and
// `-qmp tcp:HOST:PORT[,server=on][,wait=on|off]` (QEMU's syntax; a
// bare server and nowait work too).
func parseQMP(v string) (monitorSpec, error) {
	m := monitorSpec{option: "-qmp " + v}
	o, err := parseQemuOpts("-qmp", v)
	if err != nil {
		return m, err
	}
	switch {
	case strings.HasPrefix(o.driver, "unix:"):
		m.network, m.addr = "unix", strings.TrimPrefix(o.driver, "unix:")
		if m.addr == "" {
			return m, fmt.Errorf("-qmp %s: the unix socket path is empty", v)
		}
	case strings.HasPrefix(o.driver, "tcp:"):
		m.network, m.addr = "tcp", strings.TrimPrefix(o.driver, "tcp:")
		if _, _, err := net.SplitHostPort(m.addr); err != nil {
			return m, fmt.Errorf("-qmp %s: want tcp:HOST:PORT: %v", v, err)
		}
	default:
		return m, fmt.Errorf("-qmp %s: want unix:PATH,server=on,wait=off or tcp:HOST:PORT,server=on,wait=off", v)
	}
	server, err := o.boolean("server", false)
	if err != nil {
		return m, err
	}
	if !server {
		return m, fmt.Errorf("-qmp %s: only server=on is supported (vmm listens; it does not connect out)", v)
	}
	if m.wait, err = o.boolean("wait", true); err != nil {
		return m, err
	}
	return m, o.unused()
}

// parseMon reads libvirt's `-mon chardev=ID,mode=control[,pretty=off]`.
func parseMon(v string) (monitorSpec, error) {
	m := monitorSpec{option: "-mon " + v}
	mode := "readline"
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "chardev":
			m.chardev = val
		case "mode":
			mode = val
		case "pretty":
			if val != "off" {
				return m, fmt.Errorf("-mon %s: pretty=%s is not supported (replies are one line each)", v, val)
			}
		case "id", "default":
		default:
			return m, fmt.Errorf("-mon %s: unknown property %q (want chardev=ID,mode=control)", v, k)
		}
	}
	if m.chardev == "" {
		return m, fmt.Errorf("-mon %s: chardev= is required", v)
	}
	if mode != "control" {
		return m, fmt.Errorf("-mon %s: mode=%s: only mode=control (QMP) is supported; the human monitor is not", v, mode)
	}
	return m, nil
}

// addMonitor takes one -qmp or -mon.
func (o *options) addMonitor(option, v string) error {
	parse := parseQMP
	if option == "mon" {
		parse = parseMon
	}
	m, err := parse(v)
	if err != nil {
		return err
	}
	o.monitors = append(o.monitors, m)
	return nil
}
