package main

import (
	"fmt"
	"strings"

	"vmm/devices/virtioserial"
)

// serialDevices collects the -device options: virtio-serial controllers
// and the ports plugged into them, resolved by build.
type serialDevices struct {
	buses    []*serialBus
	ports    []*qemuOpts       // virtserialport and virtconsole, in order
	ids      map[string]string // -device id= → driver, for uniqueness
	chardevs map[string]*chardevSpec
	// pvpanicPCI is -device pvpanic-pci (machine.Config.PVPanicPCI).
	pvpanicPCI bool
}

// serialBus is one virtio-serial controller.
type serialBus struct {
	opts *qemuOpts
	id   string // id=, "" if none
	pci  bool   // virtio-pci, else virtio-mmio
}

// serialBusConfig is one built controller.
type serialBusConfig struct {
	ID  string
	PCI bool
	Cfg virtioserial.Config
}

// addDevice takes one -device value.
func (s *serialDevices) addDevice(v string) error {
	o, err := parseQemuOpts("-device", v)
	if err != nil {
		return err
	}
	id, hasID := o.str("id")
	if hasID {
		if err := checkID("-device "+o.driver, id); err != nil {
			return err
		}
		if prev, dup := s.ids[id]; dup {
			return fmt.Errorf("-device %s: id %q is already used by a -device %s", o.driver, id, prev)
		}
		if s.ids == nil {
			s.ids = map[string]string{}
		}
		s.ids[id] = o.driver
	}
	switch o.driver {
	case "virtio-serial", "virtio-serial-pci", "virtio-serial-device":
		// QEMU's names: -device (virtio-mmio) or -pci; the bare name is
		// PCI, as on QEMU's PC machines.
		s.buses = append(s.buses, &serialBus{opts: o, id: id, pci: o.driver != "virtio-serial-device"})
	case "virtserialport", "virtconsole":
		s.ports = append(s.ports, o)
	case "pvpanic":
		// ISA pvpanic at its only port; vmm's machine always has it.
		if port, ok := o.str("ioport"); ok && port != "0x505" && port != "1285" {
			return fmt.Errorf("-device pvpanic: ioport=%s: only 0x505 is supported", port)
		}
		return o.unused()
	case "pvpanic-pci":
		// QEMU's PCI pvpanic, for guests without ACPI; one per VM.
		if s.pvpanicPCI {
			return fmt.Errorf("-device pvpanic-pci: given twice (a VM has one)")
		}
		s.pvpanicPCI = true
		return o.unused()
	default:
		return fmt.Errorf("-device %s: unknown device (want virtio-serial, virtio-serial-pci, virtio-serial-device, virtserialport, virtconsole, pvpanic or pvpanic-pci)", o.driver)
	}
	return nil
}

// checkID applies QEMU's rule for ids: a letter, then letters, digits,
// '-', '.' or '_'.
func checkID(what, id string) error {
	ok := id != ""
	for i, r := range id {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_')) {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("%s: id=%q: an id starts with a letter and has only letters, digits, '-', '.' and '_'", what, id)
	}
	return nil
}

// busFor finds the controller a port plugs into: bus=ID.0 names it (QEMU
// calls a virtio-serial device's bus "ID.0"); without bus= the first one.
func (s *serialDevices) busFor(o *qemuOpts) (int, error) {
	if len(s.buses) == 0 {
		return 0, fmt.Errorf("-device %s: needs a -device virtio-serial to plug into", o.driver)
	}
	bus, ok := o.str("bus")
	if !ok {
		return 0, nil
	}
	id, hasSuffix := strings.CutSuffix(bus, ".0")
	for i, b := range s.buses {
		if b.id != "" && b.id == id && hasSuffix {
			return i, nil
		}
	}
	for _, b := range s.buses {
		if b.id != "" && b.id == bus {
			return 0, fmt.Errorf("-device %s: bus=%s: a virtio-serial device's bus is its id plus \".0\" (bus=%s.0)", o.driver, bus, bus)
		}
	}
	return 0, fmt.Errorf("-device %s: bus=%s: no virtio-serial device has that bus (give the device an id, e.g. -device virtio-serial-pci,id=vs0, and use bus=vs0.0)", o.driver, bus)
}

// build turns the options into device configs, one per controller, in
// command-line order. Backends are not started.
func (s *serialDevices) build() ([]serialBusConfig, error) {
	cfgs := make([]serialBusConfig, len(s.buses))
	for i, b := range s.buses {
		maxPorts, err := b.opts.integer("max_ports", virtioserial.MaxPorts)
		if err != nil {
			return nil, err
		}
		if err := b.opts.unused(); err != nil {
			return nil, err
		}
		cfgs[i] = serialBusConfig{ID: b.id, PCI: b.pci, Cfg: virtioserial.Config{MaxPorts: maxPorts}}
	}
	inUse := map[string]string{}
	names := map[string]bool{} // QEMU finds ports by name across devices
	for _, o := range s.ports {
		bi, err := s.busFor(o)
		if err != nil {
			return nil, err
		}
		id, err := o.required("chardev")
		if err != nil {
			return nil, err
		}
		c := s.chardevs[id]
		if c == nil {
			return nil, fmt.Errorf("-device %s: chardev %q is not defined (no -chardev …,id=%s)", o.driver, id, id)
		}
		if prev, dup := inUse[id]; dup {
			return nil, fmt.Errorf("-device %s: chardev %q is already used by a %s", o.driver, id, prev)
		}
		if c.serial {
			return nil, fmt.Errorf("-device %s: chardev %q is already used by -serial chardev:%s (one front end per chardev)", o.driver, id, id)
		}
		inUse[id] = o.driver
		name, _ := o.str("name")
		if name != "" && names[name] {
			return nil, fmt.Errorf("-device %s: port name %q is already in use", o.driver, name)
		}
		names[name] = true
		nr, err := o.integer("nr", -1)
		if err != nil {
			return nil, err
		}
		if _, given := o.props["nr"]; given && nr < 0 {
			return nil, fmt.Errorf("-device %s: nr=%d out of range", o.driver, nr)
		}
		mode, _ := o.str("disconnected")
		if mode != "" && mode != "hold" && mode != "drop" {
			return nil, fmt.Errorf("-device %s: disconnected=%s: want hold or drop", o.driver, mode)
		}
		limit, err := o.size("limit", 0)
		if err != nil {
			return nil, err
		}
		if limit > 0 && o.driver != "virtconsole" {
			return nil, fmt.Errorf("-device %s: limit= applies to virtconsole: a virtserialport keeps its backlog in the guest's own queue", o.driver)
		}
		if err := o.unused(); err != nil {
			return nil, err
		}
		cfgs[bi].Cfg.Ports = append(cfgs[bi].Cfg.Ports, virtioserial.PortConfig{Nr: nr, Name: name,
			Console: o.driver == "virtconsole", Backend: c.backend,
			DropDisconnected: mode == "drop", Limit: int(limit)})
	}
	return cfgs, nil
}

// noPCI moves controllers to virtio-mmio for a machine without PCI
// (-M microvm): the bare name follows the machine, as in QEMU; an
// explicit -pci is refused.
func (s *serialDevices) noPCI() error {
	if s.pvpanicPCI {
		return fmt.Errorf("-device pvpanic-pci: -M microvm has no PCI bus (the ISA pvpanic at 0x505 is always there)")
	}
	for _, b := range s.buses {
		switch b.opts.driver {
		case "virtio-serial-pci":
			return fmt.Errorf("-device virtio-serial-pci: -M microvm has no PCI bus (use -device virtio-serial-device, or -M q35)")
		case "virtio-serial":
			b.pci = false
		}
	}
	return nil
}
