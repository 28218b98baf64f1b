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
}

// parseOptions reads QEMU-style options: `-name value`, `--name value`
// and `-name=value` are all accepted.
func parseOptions(args []string) (*options, error) {
	o := &options{memSize: 256 << 20, cpus: 1, acpi: true,
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
			"machine": true, "M": true}
		if !takesValue[name] {
			if name == "nographic" || name == "enable-kvm" {
				continue // what QEMU users type out of habit; always true here
			}
			return nil, fmt.Errorf("unknown option %q", a)
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
			o.acpi, err = parseMachine(value)
		}
		if err != nil {
			return nil, err
		}
	}
	if o.kernel == "" {
		return nil, fmt.Errorf("no kernel: -kernel FILE is required")
	}
	if err := o.resolveSerial(); err != nil {
		return nil, err
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
	if !ok || err != nil || f <= 0 {
		return 0, fmt.Errorf("cannot parse size %q (want e.g. 512, 512M, 2G)", s)
	}
	n := f * float64(mult)
	if n >= 1<<50 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return uint64(n), nil
}

// parseSMP reads `-smp N` or `-smp cpus=N`.
func parseSMP(s string) (int, error) {
	v := s
	for _, part := range strings.Split(s, ",") {
		if k, val, ok := strings.Cut(part, "="); ok {
			if k != "cpus" {
				return 0, fmt.Errorf("-smp %s: %s= is not supported (only the vCPU count)", s, k)
			}
			v = val
		} else {
			v = part
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("-smp %s: not a number of vCPUs", s)
	}
	if n < 1 {
		return 0, fmt.Errorf("-smp %s: at least one vCPU is needed", s)
	}
	return n, nil
}

// parseMachine reads `-machine [TYPE,]acpi=on|off`. The machine is
// always vmm's own; QEMU's type names are accepted for familiarity.
func parseMachine(s string) (acpi bool, err error) {
	acpi = true
	for i, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		switch {
		case !ok && i == 0:
			switch k {
			case "pc", "q35", "microvm", "vmm", "none":
			default:
				return false, fmt.Errorf("-machine %s: unknown machine type %q (this is a pc-like machine; acpi= is the option)", s, k)
			}
		case k == "acpi" && (v == "on" || v == "off"):
			acpi = v == "on"
		default:
			return false, fmt.Errorf("-machine %s: unknown property %q (want acpi=on|off)", s, part)
		}
	}
	return acpi, nil
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
	if !o.serialGiven && len(stdio) == 0 {
		o.serial, _, _ = parseSerial("stdio")
	}
	return nil
}
