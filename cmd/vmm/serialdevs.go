package main

import (
	"fmt"
	"strconv"
	"time"

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
		signal, err := o.boolean("signal", true)
		if err != nil {
			return nil, err
		}
		c.backend, c.stdio = chardev.NewStdio(id, signal), true
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
		cfg, err := socketConfig(o, id)
		if err != nil {
			return nil, err
		}
		c.backend = chardev.NewSocket(cfg)
	case "pipe":
		path, err := o.required("path")
		if err != nil {
			return nil, err
		}
		c.backend = chardev.NewPipe(id, path)
	case "pty":
		c.backend = chardev.NewPty(id)
	case "ringbuf", "memory":
		size, err := o.size("size", 64<<10)
		if err != nil {
			return nil, err
		}
		if size == 0 || size&(size-1) != 0 {
			return nil, fmt.Errorf("-chardev ringbuf: size=%d must be a power of two", size)
		}
		c.backend = chardev.NewRingbuf(id, int(size))
	default:
		return nil, fmt.Errorf("-chardev %s: unknown backend (want socket, pipe, pty, file, ringbuf, stdio or null)", o.driver)
	}
	return c, o.unused()
}

// socketConfig reads a socket chardev: path= (unix) or host=,port= (tcp).
func socketConfig(o *qemuOpts, id string) (chardev.SocketConfig, error) {
	cfg := chardev.SocketConfig{ID: id}
	var err error
	path, hasPath := o.str("path")
	host, _ := o.str("host")
	port, hasPort := o.str("port")
	switch {
	case hasPath && hasPort:
		return cfg, fmt.Errorf("-chardev socket: give path= or host=,port=, not both")
	case hasPath:
		cfg.Path = path
	case hasPort:
		if cfg.Port, err = strconv.Atoi(port); err != nil || cfg.Port < 0 || cfg.Port > 65535 {
			return cfg, fmt.Errorf("-chardev socket: port=%s is not a port number", port)
		}
		cfg.Host = host
	default:
		return cfg, fmt.Errorf("-chardev socket: path= (unix) or host=,port= (tcp) is required")
	}
	if cfg.Server, err = o.boolean("server", false); err != nil {
		return cfg, err
	}
	if cfg.Wait, err = o.boolean("wait", cfg.Server); err != nil {
		return cfg, err
	}
	cfg.Wait = cfg.Wait && cfg.Server
	if cfg.NoDelay, err = o.boolean("nodelay", false); err != nil {
		return cfg, err
	}
	secs, err := o.integer("reconnect", 0)
	if err != nil {
		return cfg, err
	}
	if secs < 0 || (secs > 0 && cfg.Server) {
		return cfg, fmt.Errorf("-chardev socket: reconnect=%d: only for a client (server=off), in seconds >= 0", secs)
	}
	cfg.Reconnect = time.Duration(secs) * time.Second
	return cfg, nil
}

// serialDevices collects -device options for the virtio-serial bus.
type serialDevices struct {
	bus      *qemuOpts   // the virtio-serial controller
	pci      bool        // its transport: virtio-pci, else virtio-mmio
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
	case "virtio-serial", "virtio-serial-pci", "virtio-serial-device":
		if s.bus != nil {
			return fmt.Errorf("-device %s: only one virtio-serial device is supported", o.driver)
		}
		s.bus = o
		// QEMU's names: -device (virtio-mmio) or -pci; the bare name is
		// PCI, as on QEMU's PC machines.
		s.pci = o.driver != "virtio-serial-device"
	case "virtserialport", "virtconsole":
		s.ports = append(s.ports, o)
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
		cfg.Ports = append(cfg.Ports, virtioserial.PortConfig{Nr: nr, Name: name,
			Console: o.driver == "virtconsole", Backend: c.backend,
			DropDisconnected: mode == "drop", Limit: int(limit)})
	}
	return cfg, nil
}
