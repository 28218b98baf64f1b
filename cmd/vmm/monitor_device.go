package main

// QMP device_add and device_del for virtserialport and virtconsole:
// ports plugged into and out of the running guest (PORT_ADD and
// PORT_REMOVE through the virtio-serial control queue).

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"vmm/devices/virtioserial"
	"vmm/qmp"
)

type deviceAddArgs struct {
	Driver       string `json:"driver"`
	ID           string `json:"id,omitempty"`
	Bus          string `json:"bus,omitempty"`
	Chardev      string `json:"chardev,omitempty"`
	Name         string `json:"name,omitempty"`
	Nr           *int   `json:"nr,omitempty"`
	Disconnected string `json:"disconnected,omitempty"` // vmm's hold|drop
	Limit        *int   `json:"limit,omitempty"`        // vmm's console ring size
}

func (mon *monitor) deviceAdd(_ *qmp.Call, a *deviceAddArgs) (any, error) {
	if a.Driver != "virtserialport" && a.Driver != "virtconsole" {
		return nil, fmt.Errorf("'%s' is not a valid device model name (vmm hot-plugs virtserialport and virtconsole)", a.Driver)
	}
	if a.ID != "" {
		if err := checkID("device_add", a.ID); err != nil {
			return nil, err
		}
		if mon.idTaken(a.ID) {
			return nil, fmt.Errorf("Duplicate device ID '%s'", a.ID)
		}
	}
	bus, err := mon.busFor(a.Driver, a.Bus)
	if err != nil {
		return nil, err
	}
	if a.Chardev == "" {
		return nil, fmt.Errorf("Property '%s.chardev' is required (vmm plugs a port into a chardev)", a.Driver)
	}
	mon.mu.Lock()
	h := mon.chardevs[a.Chardev]
	mon.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("Property '%s.chardev' can't find value '%s'", a.Driver, a.Chardev)
	}
	if h.ownerName() != "" {
		return nil, fmt.Errorf("Property '%s.chardev' can't take value '%s': Device '%s' is in use", a.Driver, a.Chardev, a.Chardev)
	}
	if a.Name != "" {
		for _, b := range mon.buses {
			for _, st := range b.dev.Stats() {
				if st.Name == a.Name {
					return nil, fmt.Errorf("virtio-serial-bus: A port already exists by name %s", a.Name)
				}
			}
		}
	}
	if a.Disconnected != "" && a.Disconnected != "hold" && a.Disconnected != "drop" {
		return nil, fmt.Errorf("Property '%s.disconnected' can't take value '%s' (hold or drop)", a.Driver, a.Disconnected)
	}
	pc := virtioserial.PortConfig{Nr: -1, Name: a.Name, Console: a.Driver == "virtconsole",
		Backend: h, DropDisconnected: a.Disconnected == "drop", ID: a.ID}
	if a.Nr != nil {
		if *a.Nr < 0 {
			return nil, fmt.Errorf("Property '%s.nr' can't take value '%d'", a.Driver, *a.Nr)
		}
		pc.Nr = *a.Nr
	}
	if a.Limit != nil {
		if a.Driver != "virtconsole" || *a.Limit <= 0 {
			return nil, fmt.Errorf("Property '%s.limit': a positive size, for virtconsole only", a.Driver)
		}
		pc.Limit = *a.Limit
	}
	owner := a.ID
	if owner == "" {
		owner = "a device_add without id"
	}
	var nr uint32
	err = mon.onLoop(func() error {
		p, err := bus.dev.AddPort(pc)
		if err != nil {
			return err
		}
		h.setOwner(owner)
		h.attach(p)
		for _, st := range bus.dev.Stats() {
			if st.Chardev == a.Chardev {
				nr = st.ID
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if a.ID != "" {
		mon.mu.Lock()
		mon.ports[a.ID] = &pluggedPort{id: a.ID, driver: a.Driver, chardev: a.Chardev, bus: bus, nr: nr}
		mon.mu.Unlock()
	}
	slog.Info("qmp: port added", "id", a.ID, "nr", nr, "name", a.Name, "chardev", a.Chardev)
	return nil, nil
}

// idTaken: a -device id or a device_add id is already in use.
func (mon *monitor) idTaken(id string) bool {
	if _, ok := mon.o.devices.ids[id]; ok {
		return true
	}
	mon.mu.Lock()
	defer mon.mu.Unlock()
	_, ok := mon.ports[id]
	return ok
}

// busFor finds the controller named by bus= ("ID.0"), or the first.
func (mon *monitor) busFor(driver, bus string) (*serialBus0, error) {
	if len(mon.buses) == 0 {
		return nil, fmt.Errorf("No 'virtio-serial-bus' bus found for device '%s'", driver)
	}
	if bus == "" {
		return &mon.buses[0], nil
	}
	id, ok := strings.CutSuffix(bus, ".0")
	for i := range mon.buses {
		name := mon.buses[i].id
		if name == "" {
			name = "virtio-serial" + strconv.Itoa(i) // as query-port-stats names it
		}
		if ok && name == id {
			return &mon.buses[i], nil
		}
	}
	return nil, fmt.Errorf("Bus '%s' not found", bus)
}

type deviceDelArgs struct {
	ID string `json:"id"`
}

// deviceDel unplugs a port: what the guest had queued on it is dropped
// (and counted), the guest gets PORT_REMOVE, and DEVICE_DELETED follows
// the reply. The chardev stays, free for another device or for
// chardev-remove.
func (mon *monitor) deviceDel(c *qmp.Call, a *deviceDelArgs) (any, error) {
	mon.mu.Lock()
	pp := mon.ports[a.ID]
	h := mon.chardevs[pp.chardevOrEmpty()]
	mon.mu.Unlock()
	if pp == nil {
		if _, ok := mon.o.devices.ids[a.ID]; ok {
			return nil, fmt.Errorf("Device '%s' cannot be unplugged (vmm unplugs virtserialport and virtconsole)", a.ID)
		}
		return nil, qmp.Errorf(qmp.DeviceNotFound, "Device '%s' not found", a.ID)
	}
	var st virtioserial.PortStats
	mon.onLoop(func() error {
		if h != nil {
			h.detach()
		}
		st, _ = pp.bus.dev.UnplugPort(pp.nr)
		return nil
	})
	if h != nil {
		h.setOwner("")
	}
	mon.mu.Lock()
	delete(mon.ports, a.ID)
	mon.mu.Unlock()
	slog.Info("qmp: port removed", "id", a.ID, "nr", pp.nr, "dropped", st.Dropped)
	c.After(func() {
		mon.srv.Emit("DEVICE_DELETED", map[string]string{"device": a.ID, "path": "/machine/peripheral/" + a.ID})
	})
	return nil, nil
}

func (p *pluggedPort) chardevOrEmpty() string {
	if p == nil {
		return ""
	}
	return p.chardev
}
