package main

import (
	"fmt"

	"vmm/chardev"
	"vmm/devices/virtioserial"
)

// chardevSpec is a parsed -chardev: its backend, not yet started.
type chardevSpec struct {
	id      string
	backend chardev.Backend
	stdio   bool
}

// parseChardev reads `-chardev BACKEND,id=ID,…` with QEMU's names.
func parseChardev(s string) (*chardevSpec, error) {
	o, err := parseQemuOpts("-chardev", s)
	if err != nil {
		return nil, err
	}
	id, err := o.required("id")
	if err != nil {
		return nil, err
	}
	c := &chardevSpec{id: id}
	switch o.driver {
	case "null":
		c.backend = chardev.NewNull(id)
	case "stdio":
		if _, err := o.boolean("signal", true); err != nil {
			return nil, err
		}
		c.backend, c.stdio = chardev.NewStdio(id), true
	case "file":
		path, err := o.required("path")
		if err != nil {
			return nil, err
		}
		in, _ := o.str("input-path")
		appendMode, err := o.boolean("append", false)
		if err != nil {
			return nil, err
		}
		c.backend = chardev.NewFile(id, path, in, appendMode)
	case "socket":
		path, err := o.required("path")
		if err != nil {
			return nil, fmt.Errorf("%w (unix sockets only so far)", err)
		}
		server, err := o.boolean("server", false)
		if err != nil {
			return nil, err
		}
		wait, err := o.boolean("wait", server)
		if err != nil {
			return nil, err
		}
		c.backend = chardev.NewSocket(chardev.SocketConfig{ID: id, Path: path, Server: server, Wait: wait && server})
	default:
		return nil, fmt.Errorf("-chardev %s: unknown backend (want socket, file, stdio or null)", o.driver)
	}
	return c, o.unused()
}

// serialDevices collects -device options for the virtio-serial bus.
type serialDevices struct {
	bus      *qemuOpts   // the virtio-serial controller
	ports    []*qemuOpts // virtserialport and virtconsole
	chardevs map[string]*chardevSpec
}

// addDevice takes one -device value.
func (s *serialDevices) addDevice(v string) error {
	o, err := parseQemuOpts("-device", v)
	if err != nil {
		return err
	}
	switch o.driver {
	case "virtio-serial", "virtio-serial-device":
		if s.bus != nil {
			return fmt.Errorf("-device %s: only one virtio-serial device is supported", o.driver)
		}
		s.bus = o
	case "virtserialport", "virtconsole":
		s.ports = append(s.ports, o)
	case "virtio-serial-pci":
		return fmt.Errorf("-device virtio-serial-pci: the PCI transport is not built yet; use virtio-serial-device (virtio-mmio)")
	default:
		return fmt.Errorf("-device %s: unknown device (want virtio-serial, virtserialport or virtconsole)", o.driver)
	}
	return nil
}

// build turns the options into a device config (nil when there is no
// virtio-serial device). Backends are not started.
func (s *serialDevices) build() (*virtioserial.Config, error) {
	if s.bus == nil {
		if len(s.ports) > 0 {
			return nil, fmt.Errorf("-device %s: needs a -device virtio-serial to plug into", s.ports[0].driver)
		}
		return nil, nil
	}
	maxPorts, err := s.bus.integer("max_ports", virtioserial.MaxPorts)
	if err != nil {
		return nil, err
	}
	if err := s.bus.unused(); err != nil {
		return nil, err
	}
	cfg := &virtioserial.Config{MaxPorts: maxPorts}
	inUse := map[string]string{}
	for _, o := range s.ports {
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
		inUse[id] = o.driver
		name, _ := o.str("name")
		nr, err := o.integer("nr", -1)
		if err != nil {
			return nil, err
		}
		if _, given := o.props["nr"]; given && nr < 0 {
			return nil, fmt.Errorf("-device %s: nr=%d out of range", o.driver, nr)
		}
		if err := o.unused(); err != nil {
			return nil, err
		}
		cfg.Ports = append(cfg.Ports, virtioserial.PortConfig{Nr: nr, Name: name,
			Console: o.driver == "virtconsole", Backend: c.backend})
	}
	return cfg, nil
}
