package main

// The QMP monitors of `vmm run` (-qmp, -mon): the server, its commands
// (monitor_cmds.go, monitor_chardev_cmds.go, monitor_device.go) and the
// events vmm emits. Commands reach ports and chardevs only through the
// event loop (Loop.Post), the owner of port state.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"vmm/chardev"
	"vmm/devices/virtioserial"
	"vmm/machine"
	"vmm/qmp"
)

// qemuVersion is the QEMU release whose QMP vmm speaks, reported by the
// greeting and query-version (clients such as libvirt gate on it).
var qemuVersion = qmp.Version{Major: 7, Minor: 2, Micro: 0, Package: "vmm"}

// monitor is every QMP monitor of one VM and the state behind its
// commands.
type monitor struct {
	specs []monitorSpec
	o     *options
	srv   *qmp.Server

	// Set by start; read-only afterwards.
	m     *machine.Machine
	loop  *chardev.Loop
	buses []serialBus0 // the virtio-serial controllers, in order
	stop  func(reason string)
	// endedCh is closed once SHUTDOWN has been emitted.
	endedCh chan struct{}
	// identity is what a snapshot of this VM must match (migrate.go).
	identity string
	mig      migration // the last migrate, for query-migrate

	mu sync.Mutex
	// The fields below are guarded by mu (a leaf: OnGuestOpen takes it
	// with a device's lock held).
	chardevs   map[string]*hostChardev
	ports      map[string]*pluggedPort // by -device id
	hostReason string                  // SHUTDOWN reason of a host-requested end
}

// serialBus0 is one virtio-serial controller: QMP names its bus "ID.0".
type serialBus0 struct {
	id  string
	dev *virtioserial.Device
}

// pluggedPort is a virtserialport or virtconsole with an id.
type pluggedPort struct {
	id, driver, chardev string
	bus                 *serialBus0
	nr                  uint32
}

// newMonitor prepares the monitors given on the command line, or
// returns nil when there are none (nothing changes then). It wraps
// every port's backend so that chardevs can be hot-plugged and ports
// report guest opens; call it before the devices are built from cfgs.
func newMonitor(o *options, cfgs []serialBusConfig) *monitor {
	if len(o.monitors) == 0 {
		return nil
	}
	mon := &monitor{specs: o.monitors, o: o, chardevs: map[string]*hostChardev{}, ports: map[string]*pluggedPort{},
		endedCh: make(chan struct{}), srv: qmp.New(qmp.Config{Version: qemuVersion})}
	devIDs := map[string]string{} // chardev id → -device id
	for _, p := range o.devices.ports {
		if id, ok := p.props["id"]; ok {
			devIDs[p.props["chardev"]] = id
		}
	}
	for i := range cfgs {
		cfgs[i].Cfg.OnGuestOpen = mon.guestOpen
		for j := range cfgs[i].Cfg.Ports {
			pc := &cfgs[i].Cfg.Ports[j]
			h := newHostChardev(pc.Backend)
			pc.Backend = h
			pc.ID = devIDs[h.ID()]
			owner := pc.ID
			if owner == "" {
				owner = "a -device without id"
			}
			h.owner = owner
			mon.chardevs[h.ID()] = h
		}
	}
	for id, c := range o.devices.chardevs {
		if mon.chardevs[id] != nil {
			continue
		}
		h := newHostChardev(c.backend)
		if c.serial {
			h.owner = "serial"
		}
		mon.chardevs[id] = h
	}
	return mon
}

// start serves the monitors once the VM exists and before it runs. devs
// are the virtio-serial devices built from newMonitor's cfgs, in order.
// A monitor with wait=on holds start until its first client connects.
func (mon *monitor) start(m *machine.Machine, loop *chardev.Loop, cfgs []serialBusConfig, devs []*virtioserial.Device, stop func(string)) error {
	if mon == nil {
		return nil
	}
	mon.m, mon.loop, mon.stop = m, loop, stop
	for i, d := range devs {
		mon.buses = append(mon.buses, serialBus0{id: cfgs[i].ID, dev: d})
	}
	for i := range mon.buses {
		b := &mon.buses[i]
		for _, st := range b.dev.Stats() {
			if st.DevID != "" {
				driver := "virtserialport"
				if st.Console {
					driver = "virtconsole"
				}
				mon.ports[st.DevID] = &pluggedPort{id: st.DevID, driver: driver, chardev: st.Chardev, bus: b, nr: st.ID}
			}
		}
	}
	mon.register()
	mon.registerMigrate()

	// Listeners first (a -mon claims its chardev), then the chardevs no
	// device uses are opened, as QEMU opens them all, and only then do
	// clients come in: commands never race with start-up.
	var listeners []net.Listener
	var waits []chan struct{}
	var waitFor []string
	fail := func(err error) error {
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	for _, s := range mon.specs {
		l, err := mon.listen(&s)
		if err != nil {
			return fail(err)
		}
		if s.wait {
			w := &firstAccept{Listener: l, first: make(chan struct{})}
			waits = append(waits, w.first)
			waitFor = append(waitFor, s.option)
			l = w
		}
		listeners = append(listeners, l)
	}
	for id, h := range mon.chardevs {
		if h.ownerName() != "" {
			continue
		}
		if err := h.Start(loop, nil); err != nil { // as Device.Start does, before the VM runs
			return fail(fmt.Errorf("chardev %s: %w", id, err))
		}
	}
	for i, l := range listeners {
		option := mon.specs[i].option
		go func() {
			if err := mon.srv.Serve(l); err != nil {
				slog.Warn("qmp: monitor stopped", "monitor", option, "err", err)
			}
		}()
	}
	for i, w := range waits {
		fmt.Fprintf(os.Stderr, "vmm: %s: waiting for a QMP client\n", waitFor[i])
		<-w
	}
	return nil
}

// listen opens a monitor's socket; a -mon takes over its -chardev.
func (mon *monitor) listen(s *monitorSpec) (net.Listener, error) {
	if s.chardev != "" {
		mon.mu.Lock()
		h := mon.chardevs[s.chardev]
		mon.mu.Unlock()
		if h == nil {
			return nil, badOption(fmt.Errorf("%s: chardev %q is not defined (no -chardev socket,id=%s,…)", s.option, s.chardev, s.chardev))
		}
		sock, ok := h.backend.(*chardev.Socket)
		if !ok || !sock.Config().Server || h.ownerName() != "" {
			return nil, badOption(fmt.Errorf("%s: chardev %q must be a -chardev socket with server=on that nothing else uses", s.option, s.chardev))
		}
		h.setOwner("monitor")
		cfg := sock.Config()
		s.network, s.addr, s.wait = "unix", cfg.Path, cfg.Wait
		if cfg.Path == "" {
			s.network, s.addr = "tcp", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
		}
	}
	if s.network == "unix" {
		// A stale socket from an earlier run is replaced, as QEMU does.
		if fi, err := os.Lstat(s.addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(s.addr)
		}
	}
	l, err := net.Listen(s.network, s.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.option, err)
	}
	return l, nil
}

// firstAccept reports a listener's first connection.
type firstAccept struct {
	net.Listener
	once  sync.Once
	first chan struct{}
}

func (f *firstAccept) Accept() (net.Conn, error) {
	c, err := f.Listener.Accept()
	if err == nil {
		f.once.Do(func() { close(f.first) })
	}
	return c, err
}

// onLoop runs f on the event loop and waits for it.
func (mon *monitor) onLoop(f func() error) error {
	done := make(chan error, 1)
	if !mon.loop.Post(func() { done <- f() }) {
		return errors.New("the event loop has stopped")
	}
	return <-done
}

// guestOpen is every virtio-serial device's OnGuestOpen: the guest
// opened or closed the port with -device id=id.
func (mon *monitor) guestOpen(id string, open bool) {
	mon.srv.Emit("VSERPORT_CHANGE", map[string]any{"id": id, "open": open})
}

// ended emits SHUTDOWN for the way the VM ended.
func (mon *monitor) ended(e machine.Exit) {
	if mon == nil || mon.srv == nil {
		return
	}
	mon.mu.Lock()
	reason := mon.hostReason
	mon.mu.Unlock()
	guest := false
	if reason == "" {
		guest, reason = shutdownCause(e)
	}
	mon.srv.Emit("SHUTDOWN", map[string]any{"guest": guest, "reason": reason})
	close(mon.endedCh)
}

// shutdownCause maps how the VM ended to QEMU's ShutdownCause.
func shutdownCause(e machine.Exit) (guest bool, reason string) {
	r := e.Reason
	switch {
	case e.Err != nil:
		return true, "guest-panic"
	case strings.HasPrefix(r, "signal "):
		return false, "host-signal"
	case r == "Ctrl-A x":
		return false, "host-ui"
	case strings.Contains(r, "reset"):
		return true, "guest-reset"
	case strings.Contains(r, "panic"):
		return true, "guest-panic"
	case strings.Contains(r, "power off"), strings.Contains(r, "halted"), strings.HasPrefix(r, "guest exit"):
		return true, "guest-shutdown"
	}
	return false, "host-error"
}

// close stops the monitors; clients get what is queued (SHUTDOWN) first.
func (mon *monitor) close() {
	if mon == nil || mon.srv == nil {
		return
	}
	mon.srv.Close(time.Second)
}
