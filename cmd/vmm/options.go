package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"vmm/machine"
)

// options is a parsed `vmm run` command line.
type options struct {
	monitors []monitorSpec // -qmp and -mon (monitor_opts.go)

	kernel, initrd string
	cmdline        string
	memSize        uint64
	cpus           int
	cpu            []machine.FeatureChange
	serial         *chardevSpec // COM1's backend; nil: none
	serialRef      string       // -serial chardev:ID, resolved at the end
	serialGiven    bool
	devices        serialDevices
	acpi           bool
	microvm        bool   // -M microvm: virtio-mmio only, no PCI
	name           string // -name: in log lines
	pidfile        string
	daemonize      bool   // -daemonize: detach once the VM is up (daemonize.go)
	noDefaults     bool   // -nodefaults: no COM1 backend unless -serial gives one
	panicAction    string // -action panic=: exit-failure (default), shutdown, pause or none
	incoming       string // -incoming file:PATH: the snapshot to restore (migrate.go)
	startPaused    bool   // -S: the vCPUs wait for QMP cont
}

// parseOptions reads QEMU-style options: `-name value`, `--name value`
// and `-name=value` are all accepted.
func parseOptions(args []string) (*options, error) {
	o := &options{memSize: 256 << 20, cpus: 1, acpi: true, panicAction: "exit-failure",
		devices: serialDevices{chardevs: map[string]*chardevSpec{}}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			return nil, fmt.Errorf("unexpected argument %q (options start with -)", a)
		}
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		takesValue := map[string]bool{"kernel": true, "initrd": true, "append": true,
			"m": true, "smp": true, "cpu": true, "serial": true, "chardev": true, "device": true,
			"machine": true, "M": true, "accel": true, "display": true, "vga": true, "name": true,
			"pidfile": true, "action": true, "qmp": true, "mon": true, "incoming": true}
		if !takesValue[name] {
			switch name {
			case "nographic", "enable-kvm", "no-reboot", "no-user-config":
				// Always so here: no display, KVM, a guest reset ends the
				// VM (QEMU's -no-reboot), no configuration files.
				continue
			case "nodefaults":
				o.noDefaults = true
				continue
			case "S":
				o.startPaused = true
				continue
			case "daemonize":
				o.daemonize = true
				continue
			case "no-shutdown", "snapshot", "no-acpi", "no-hpet", "usb", "full-screen", "s", "singlestep":
				return nil, fmt.Errorf("%s is not supported by vmm (vmm run --help lists what is)", a)
			}
			return nil, fmt.Errorf("unknown option %q (vmm run --help lists the options)", a)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("option -%s needs a value", name)
			}
			i++
			value = args[i]
		}
		var err error
		switch name {
		case "kernel":
			o.kernel = value
		case "initrd":
			o.initrd = value
		case "append":
			o.cmdline = value
		case "m":
			o.memSize, err = parseMemSize(value)
		case "smp":
			o.cpus, err = parseSMP(value)
		case "cpu":
			o.cpu, err = machine.ParseCPU(value)
		case "serial":
			if o.serialGiven {
				return nil, fmt.Errorf("-serial %s: vmm has one serial port (COM1), and an earlier -serial already set it", value)
			}
			o.serial, o.serialRef, err = parseSerial(value)
			o.serialGiven = true
		case "chardev":
			var c *chardevSpec
			if c, err = parseChardev(value); err == nil {
				if o.devices.chardevs[c.id] != nil {
					err = fmt.Errorf("-chardev %s: id %q is already defined", value, c.id)
				}
				o.devices.chardevs[c.id] = c
			}
		case "device":
			err = o.devices.addDevice(value)
		case "machine", "M":
			o.acpi, o.microvm, err = parseMachine(value)
		case "accel":
			err = parseAccel(value)
		case "display", "vga":
			if value != "none" {
				err = fmt.Errorf("-%s %s: vmm has no display (only -%s none; the console is -serial)", name, value, name)
			}
		case "name":
			o.name, err = parseName(value)
		case "pidfile":
			if value == "" {
				err = fmt.Errorf("-pidfile: the file name is empty")
			}
			o.pidfile = value
		case "qmp", "mon":
			err = o.addMonitor(name, value)
		case "action":
			o.panicAction, err = parseAction(value)
		case "incoming":
			o.incoming, err = parseIncoming(value)
		}
		if err != nil {
			return nil, err
		}
	}
	if o.kernel == "" && o.incoming == "" {
		return nil, fmt.Errorf("no kernel: -kernel FILE is required (or -incoming file:PATH to restore a snapshot)")
	}
	if err := o.resolveSerial(); err != nil {
		return nil, err
	}
	if o.microvm {
		if err := o.devices.noPCI(); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// parseMemSize reads QEMU's -m: a bare number is MiB; K, M, G and T
// suffixes (optionally followed by B or iB) are binary; size=… also works.
func parseMemSize(s string) (uint64, error) {
	v := strings.TrimPrefix(s, "size=")
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i] // slots=/maxmem= are memory hotplug: not supported, ignored
	}
	n, err := parseSize(v, 1<<20)
	if err != nil {
		return 0, fmt.Errorf("-m %s: %w", s, err)
	}
	if n < 16<<20 {
		return 0, fmt.Errorf("-m %s: guest memory must be at least 16 MiB", s)
	}
	if n%(4<<10) != 0 {
		return 0, fmt.Errorf("-m %s: guest memory must be a multiple of 4 KiB", s)
	}
	return n, nil
}

// parseSize reads a number with an optional binary suffix (K, M, G, T,
// each optionally followed by B or iB; B alone is bytes); unit is the
// multiplier for a bare number.
func parseSize(s string, unit uint64) (uint64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, suffix := s[:i], strings.ToUpper(s[i:])
	mults := map[string]uint64{"": unit, "B": 1,
		"K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10,
		"M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
		"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30,
		"T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}
	mult, ok := mults[suffix]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || f < 0 {
		return 0, fmt.Errorf("cannot parse size %q (want e.g. 512, 512M, 2G)", s)
	}
	n := f * float64(mult)
	if n >= 1<<50 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return uint64(n), nil
}

// parseSMP reads `-smp N` or `-smp [cpus=]N[,sockets=S][,dies=1][,cores=C][,threads=T][,maxcpus=N]`.
// The guest sees one socket of N cores, so a topology is accepted when
// it says the same; anything else is refused rather than ignored.
func parseSMP(s string) (int, error) {
	vals := map[string]int{}
	for i, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			if i != 0 {
				return 0, fmt.Errorf("-smp %s: %q: want key=value after the vCPU count", s, part)
			}
			k, v = "cpus", part
		}
		switch k {
		case "cpus", "sockets", "dies", "clusters", "cores", "threads", "maxcpus":
		default:
			return 0, fmt.Errorf("-smp %s: unknown property %q (want cpus, sockets, dies, cores, threads, maxcpus)", s, k)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			if k == "cpus" {
				return 0, fmt.Errorf("-smp %s: not a number of vCPUs", s)
			}
			return 0, fmt.Errorf("-smp %s: %s=%s is not a number", s, k, v)
		}
		if n < 1 {
			if k == "cpus" {
				return 0, fmt.Errorf("-smp %s: at least one vCPU is needed", s)
			}
			return 0, fmt.Errorf("-smp %s: %s=%d must be at least 1", s, k, n)
		}
		vals[k] = n
	}
	one := func(k string) int {
		if n, ok := vals[k]; ok {
			return n
		}
		return 1
	}
	product := one("sockets") * one("dies") * one("clusters") * one("cores") * one("threads")
	cpus, hasCPUs := vals["cpus"]
	topology := false
	for _, k := range []string{"sockets", "dies", "clusters", "cores", "threads"} {
		_, given := vals[k]
		topology = topology || given
	}
	switch {
	case !hasCPUs:
		cpus = product
	case topology && cpus != product:
		return 0, fmt.Errorf("-smp %s: sockets × dies × cores × threads = %d, but cpus=%d (make them agree)", s, product, cpus)
	}
	if m, ok := vals["maxcpus"]; ok && m != cpus {
		return 0, fmt.Errorf("-smp %s: maxcpus=%d: CPU hotplug is not supported (leave maxcpus out or make it %d)", s, m, cpus)
	}
	for _, k := range []string{"sockets", "dies", "clusters", "threads"} {
		if one(k) != 1 {
			return 0, fmt.Errorf("-smp %s: %s=%d: the guest sees one socket of %d cores, one thread each (give cores=%d or just -smp %d)", s, k, one(k), cpus, cpus, cpus)
		}
	}
	return cpus, nil
}

// parseMachine reads `-machine [type=]TYPE[,accel=kvm][,acpi=on|off]…`.
// microvm is virtio-mmio only (no PCI); pc and q35 have PCI. The
// machine is vmm's own either way: QEMU's type names say which buses.
func parseMachine(s string) (acpi, microvm bool, err error) {
	acpi = true
	for i, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok && i == 0 {
			k, v = "type", part
		}
		switch {
		case k == "type":
			switch {
			case v == "microvm":
				microvm = true
			case v == "pc", v == "q35", v == "vmm", v == "none",
				strings.HasPrefix(v, "pc-q35-"), strings.HasPrefix(v, "pc-i440fx-"):
			default:
				return false, false, fmt.Errorf("-machine %s: unknown machine type %q (want pc, q35 or microvm)", s, v)
			}
		case k == "acpi" && (v == "on" || v == "off"):
			acpi = v == "on"
		case k == "accel":
			if err := parseAccel(v); err != nil {
				return false, false, fmt.Errorf("-machine %s: %w", s, err)
			}
		case (k == "usb" || k == "vmport" || k == "hpet" || k == "graphics") && v == "off",
			k == "dump-guest-core" && (v == "on" || v == "off"):
			// What libvirt passes: none of these exist here.
		default:
			return false, false, fmt.Errorf("-machine %s: unsupported property %q (want type, accel=kvm, acpi=on|off)", s, part)
		}
	}
	return acpi, microvm, nil
}

// parseAccel accepts KVM, the only accelerator (QEMU's -accel kvm).
func parseAccel(s string) error {
	name, _, _ := strings.Cut(s, ",")
	if name != "kvm" {
		return fmt.Errorf("accelerator %q is not supported: vmm runs on KVM only (-accel kvm)", s)
	}
	return nil
}

// parseName reads `-name NAME` or `-name guest=NAME[,debug-threads=on|off]`.
func parseName(s string) (string, error) {
	name := s
	if strings.Contains(s, "=") {
		name = ""
		for _, part := range splitCommas(s) {
			k, v, _ := strings.Cut(part, "=")
			switch k {
			case "guest":
				name = v
			case "debug-threads", "process":
			default:
				return "", fmt.Errorf("-name %s: unknown property %q (want NAME or guest=NAME)", s, k)
			}
		}
	}
	if name == "" {
		return "", fmt.Errorf("-name %s: the name is empty", s)
	}
	return name, nil
}

// parseAction reads QEMU's `-action panic=…` (what a guest panic does):
// exit-failure ends vmm with status 1, shutdown with 0, pause holds the
// vCPUs (for QMP to look at), none lets the guest carry on. Other events
// are refused, except the values vmm has anyway (a reset or a power-off
// always ends the VM).
func parseAction(s string) (string, error) {
	action := "exit-failure"
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch {
		case k == "panic" && (v == "exit-failure" || v == "shutdown" || v == "pause" || v == "none"):
			action = v
		case k == "panic":
			return "", fmt.Errorf("-action %s: panic=%s: want exit-failure, shutdown, pause or none", s, v)
		case k == "reboot" && v == "shutdown", k == "shutdown" && v == "poweroff":
			// What vmm does anyway (-no-reboot).
		default:
			return "", fmt.Errorf("-action %s: %q is not supported (vmm takes panic=exit-failure|shutdown|pause|none; a reset or power-off always ends the VM)", s, part)
		}
	}
	return action, nil
}

// resolveSerial settles COM1's backend: -serial chardev:ID, or the
// default (stdio, unless a -chardev stdio has the terminal), and checks
// that only one chardev has stdio.
func (o *options) resolveSerial() error {
	if o.serialRef != "" {
		c := o.devices.chardevs[o.serialRef]
		if c == nil {
			return fmt.Errorf("-serial chardev:%s: chardev %q is not defined (no -chardev …,id=%s)", o.serialRef, o.serialRef, o.serialRef)
		}
		c.serial = true
		o.serial = c
	}
	var stdio []string
	for id, c := range o.devices.chardevs {
		if c.stdio {
			stdio = append(stdio, "-chardev stdio,id="+id)
		}
	}
	if o.serial != nil && o.serial.stdio && o.serialRef == "" {
		stdio = append(stdio, "-serial stdio")
	}
	if len(stdio) > 1 {
		sort.Strings(stdio)
		return fmt.Errorf("stdio is used twice (%s): there is one terminal; give the others another backend, e.g. -serial null or -chardev pty", strings.Join(stdio, " and "))
	}
	if o.daemonize && len(stdio) > 0 {
		return fmt.Errorf("-daemonize: %s would need the terminal vmm leaves (QEMU refuses stdio with -daemonize too): use -serial null, a file, a socket or a pty", stdio[0])
	}
	if !o.serialGiven && len(stdio) == 0 && !o.noDefaults && !o.daemonize {
		o.serial, _, _ = parseSerial("stdio")
	}
	return nil
}
