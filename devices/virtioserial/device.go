// Package virtioserial is the virtio-console device with multiport
// (virtio 1.2 §5.3): named ports and console ports, the control
// protocol, and flow control against host chardevs that throttles only
// the port whose host side is slow, absent or reconnecting.
//
// Files: device.go (the virtio device, activation, reset, kicks),
// control.go and controlq.go (the control protocol and its queues),
// port.go (port state and host connection), output.go (guest→host),
// input.go (host→guest), drain.go (power-off), stats.go, guestlog.go.
// A port moves data through its chardev.Conn alone: what the backend is
// decides only how the Conn answers (would block, peer gone, input
// ended), never which path the port takes.
//
// Threads: the chardev event loop goroutine owns device and port state.
// Queue notifications, backend readiness and connection events arrive
// there (a socket's reconnect timer and the pty watcher post to it);
// everything else is carried in with Loop.Do and waited for: Activate,
// Reset and emergency writes from vCPU threads, hotplug from QMP, a
// backend's Connected/Disconnected called from another goroutine (Start,
// a test), snapshot save/restore and Drain from the VM's owner (Device.do;
// Thaw posts without waiting). Called on the loop, Do runs at once; once
// the loop has stopped no goroutine owns the state and do runs the change
// on the caller under mu, while SaveState/RestoreState refuse.
//
// Device.mu stays, for readers: the loop holds it while it changes state
// so that Stats (QMP, soak) can take a consistent snapshot from any
// goroutine; the fields after mu in Device and after backend in Port are
// guarded by mu and written only on the loop. ReadConfig reads only
// max_nr_ports, fixed at New, and takes no lock. Interrupts are raised
// after mu is released.
//
// Lock order (outer first):
//
//	virtio transport mu (MMIO.mu / PCI.mu, held across Activate and Reset;
//	pci.ConfigIO.mu too for a PCI_CFG window access) → waits for the loop
//	  loop goroutine: Device.mu
//	    → a chardev backend's mu (Drop; Ringbuf writes)
//	      → chardev.Loop.mu (Loop.Add, Watch.Modify, Watch.Remove)
//	  then, mu released: Interrupt.Signal / ConfigChanged
//
// Why waiting for the loop with the transport's mu held cannot deadlock:
// the loop never takes a transport's mu or pci.ConfigIO.mu. What it does
// take is Device.mu and backend mus (never held by a goroutine that
// waits in do), Loop.mu (a leaf) and, through Interrupt.Signal and
// ConfigChanged: nothing on virtio-mmio (atomics and an eventfd write);
// on virtio-pci pci.MSIX.mu (→ GSIRouter.mu → KVM routing ioctl, irqfd
// write), pciInterrupt.mu → pci.ConfigSpace.mu and the INTx callback (a
// KVM IRQ line ioctl). No transport path holds one of those while it
// calls into the device: setStatus runs under the transport's mu alone
// and resets the interrupt state after Device.Reset returned; MSI-X table
// and config space writes never call the device. do must not be called
// with Device.mu held, nor from OnGuestOpen.
//
// The rings (virtio.Queue) have no lock: Activate hands them to the
// device, the loop uses them until Reset (run on the loop) gives them
// back.
package virtioserial

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"vmm/chardev"
	"vmm/devices/guestlog"
	"vmm/devices/virtio"
)

// Feature bits (virtio 1.2 §5.3.3).
const (
	FeatureSize       = 1 << 0
	FeatureMultiport  = 1 << 1
	FeatureEmergWrite = 1 << 2
)

const (
	deviceTypeConsole = 3
	// MaxPorts is the largest max_ports accepted (QEMU's default limit).
	MaxPorts  = 31
	queueSize = 256
	// maxPendingControl bounds control messages waiting for the guest to
	// post control RX buffers; PORT_OPEN messages coalesce, so only a
	// guest that never posts buffers reaches it.
	maxPendingControl = 1024
	consoleRingSize   = 64 << 10
)

// PortConfig describes one port. Nr < 0 picks a number as QEMU does: 0
// for the first console, else the lowest free number from 1.
type PortConfig struct {
	Nr      int
	Name    string
	Console bool
	Backend chardev.Backend
	// DropDisconnected discards (and counts) what the guest writes while
	// no host peer is connected, like a serial line with nobody on it;
	// the default holds it in the guest's queue for the next peer.
	DropDisconnected bool
	// Limit bounds the host-side buffer of a console port (console
	// output is never held in the guest's queue); 0 means 64 KiB. A
	// serial port holds nothing on the host beyond the one TX buffer
	// it is writing: its backlog stays in the guest's queue.
	Limit int
	// ID is the -device id=, reported with the port's guest-open changes.
	ID string
}

// Config describes the device.
type Config struct {
	MaxPorts int
	Ports    []PortConfig
	Loop     *chardev.Loop
	// OnGuestOpen is told, on the event loop with the device's lock held,
	// each time the guest opens or closes a port that has an ID (QMP's
	// VSERPORT_CHANGE). It must not block.
	OnGuestOpen func(id string, open bool)
}

// Device is a virtio-serial device. It implements virtio.Device.
type Device struct {
	loop        *chardev.Loop
	maxPorts    int
	onGuestOpen func(id string, open bool)
	drainWake   chan struct{} // a port became writable (drain.go)

	mu sync.Mutex
	// The fields below are guarded by mu and written on the loop only.
	ports       map[uint32]*Port
	replyWindow time.Duration // replypoll.go
	active      bool
	multiport   bool
	queues      []*virtio.Queue
	notifiers   []virtio.Notifier
	notifyW     []*chardev.Watch // the notifiers' loop registrations
	intr        virtio.Interrupt
	ctrlPending []controlMsg
	signal      map[int]bool // queues to interrupt for once mu is released
	ctrlDropped uint64
	driverReady bool              // the guest sent DEVICE_READY: ports added now get PORT_ADD
	frozen      bool              // a snapshot is being taken: no queue is used (state.go)
	guestLog    *guestlog.Limiter // rate-limited, counted guest-triggered warnings

	onChange func() // tests: called as each state change starts, mu held
}

// New validates the configuration and builds the device. Backends are
// started by Start.
func New(cfg Config) (*Device, error) {
	if cfg.MaxPorts < 1 || cfg.MaxPorts > MaxPorts {
		return nil, fmt.Errorf("virtio-serial: max_ports=%d out of range (1 to %d)", cfg.MaxPorts, MaxPorts)
	}
	if len(cfg.Ports) > cfg.MaxPorts {
		return nil, fmt.Errorf("virtio-serial: %d ports configured but max_ports=%d", len(cfg.Ports), cfg.MaxPorts)
	}
	d := &Device{loop: cfg.Loop, maxPorts: cfg.MaxPorts, onGuestOpen: cfg.OnGuestOpen,
		ports: map[uint32]*Port{}, signal: map[int]bool{}, guestLog: newGuestLog(),
		drainWake: make(chan struct{}, 1), replyWindow: replyWindow}
	names := map[string]bool{}
	// Explicit numbers first, so automatic ones fill around them.
	order := make([]int, 0, len(cfg.Ports))
	for i, pc := range cfg.Ports {
		if pc.Nr >= 0 {
			order = append(order, i)
		}
	}
	for i, pc := range cfg.Ports {
		if pc.Nr < 0 {
			order = append(order, i)
		}
	}
	for _, i := range order {
		pc := cfg.Ports[i]
		what := "virtserialport"
		if pc.Console {
			what = "virtconsole"
		}
		if pc.Backend == nil {
			return nil, fmt.Errorf("%s: no chardev", what)
		}
		nr := pc.Nr
		if nr < 0 {
			nr = d.freeNr(pc.Console)
			if nr < 0 {
				return nil, fmt.Errorf("%s (chardev %s): no free port number below max_ports=%d", what, pc.Backend.ID(), cfg.MaxPorts)
			}
		}
		switch {
		case nr >= cfg.MaxPorts:
			return nil, fmt.Errorf("%s (chardev %s): nr=%d out of range (max_ports=%d allows 0 to %d)", what, pc.Backend.ID(), nr, cfg.MaxPorts, cfg.MaxPorts-1)
		case nr == 0 && !pc.Console:
			return nil, fmt.Errorf("virtserialport (chardev %s): nr=0 is reserved for virtconsole", pc.Backend.ID())
		case d.ports[uint32(nr)] != nil:
			return nil, fmt.Errorf("%s (chardev %s): port number %d is already in use", what, pc.Backend.ID(), nr)
		case pc.Name != "" && names[pc.Name]:
			return nil, fmt.Errorf("%s (chardev %s): port name %q is already in use", what, pc.Backend.ID(), pc.Name)
		}
		names[pc.Name] = pc.Name != ""
		d.ports[uint32(nr)] = newPort(d, uint32(nr), pc)
	}
	return d, nil
}

// freeNr returns the number QEMU would give a port without nr=. Caller
// holds mu or is still constructing the device.
func (d *Device) freeNr(console bool) int {
	start := 1
	if console {
		start = 0
	}
	for nr := start; nr < d.maxPorts; nr++ {
		if d.ports[uint32(nr)] == nil {
			return nr
		}
	}
	return -1
}

// Start starts every port's backend (binding, listening, connecting).
func (d *Device) Start() error {
	for _, p := range d.sortedPorts() {
		if err := p.backend.Start(d.loop, p); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the backends.
func (d *Device) Close() error {
	for _, p := range d.sortedPorts() {
		p.backend.Close()
	}
	return nil
}

func (d *Device) sortedPorts() []*Port {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sortedPortsLocked()
}

func (d *Device) sortedPortsLocked() []*Port {
	ps := make([]*Port, 0, len(d.ports))
	for _, p := range d.ports {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
	return ps
}

// Type implements virtio.Device.
func (d *Device) Type() uint32 { return deviceTypeConsole }

// Features implements virtio.Device.
func (d *Device) Features() uint64 { return FeatureMultiport | FeatureEmergWrite }

// QueueSizes implements virtio.Device: rx/tx for port 0, the control
// pair, then rx/tx for ports 1 to max_ports-1.
func (d *Device) QueueSizes() []uint16 {
	s := make([]uint16, 2*(d.maxPorts+1))
	for i := range s {
		s[i] = queueSize
	}
	return s
}

// Config space: {le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr}.
const (
	configMaxPorts = 4
	configEmergWr  = 8
	configSize     = 12
)

// ReadConfig implements virtio.Device.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	var cfg [configSize]byte
	binary.LittleEndian.PutUint32(cfg[configMaxPorts:], uint32(d.maxPorts))
	for i := range data {
		data[i] = 0
		if offset+uint64(i) < configSize {
			data[i] = cfg[offset+uint64(i)]
		}
	}
}

// WriteConfig implements virtio.Device: only emerg_wr is writable; its
// low byte goes to the console (port 0) at once, as in QEMU.
func (d *Device) WriteConfig(offset uint64, data []byte) {
	if offset != configEmergWr || len(data) == 0 {
		return
	}
	b := data[0]
	d.do(func() {
		p := d.ports[0]
		if p == nil {
			return
		}
		p.emergencyWrite(b)
	})
}

// Activate implements virtio.Device.
func (d *Device) Activate(ctx virtio.ActivateContext) error {
	if len(ctx.Queues) != len(d.QueueSizes()) || len(ctx.Notifiers) != len(ctx.Queues) {
		return fmt.Errorf("virtio-serial: activated with %d queues, want %d", len(ctx.Queues), len(d.QueueSizes()))
	}
	var err error
	d.do(func() {
		d.queues, d.notifiers, d.intr = ctx.Queues, ctx.Notifiers, ctx.Interrupt
		d.multiport = ctx.Features&FeatureMultiport != 0
		for i, n := range ctx.Notifiers {
			qi, fd := i, n.FD
			w, aerr := d.loop.Add(fd, unix.EPOLLIN, func(uint32) { d.notified(qi, fd) })
			if aerr != nil {
				err = fmt.Errorf("virtio-serial: queue %d notifier: %w", i, aerr)
				return
			}
			d.notifyW = append(d.notifyW, w)
		}
		d.active = true
		if !d.multiport {
			// Without multiport there is only port 0, an always-open console.
			if p := d.ports[0]; p != nil {
				p.ready = true
				p.setGuestOpen(true)
				p.pump()
			}
		}
	})
	return err
}

// Reset implements virtio.Device: queue state and everything held in
// guest buffers is forgotten; backends stay connected. What the guest
// put in its TX queues before resetting is written out first, as far as
// the backends take it now (QEMU likewise handles pending queue
// notifications before a reset): Linux resets its virtio devices on the
// way to a power-off, and a kick its ioeventfd absorbed may not have
// reached the event loop yet.
func (d *Device) Reset() {
	d.do(func() {
		if d.active {
			for _, p := range d.sortedPortsLocked() {
				if p.ready {
					p.flushTX()
				}
			}
		}
		d.deactivate()
		d.ctrlPending = nil
		for k := range d.signal {
			delete(d.signal, k)
		}
		for _, p := range d.ports {
			p.resetGuestState()
		}
	})
}

// deactivate detaches the device from its queues and their kicks; it
// no longer touches guest memory. Caller holds mu.
func (d *Device) deactivate() {
	for _, w := range d.notifyW {
		w.Remove()
	}
	d.notifyW = nil
	d.active, d.multiport, d.driverReady = false, false, false
	d.queues, d.notifiers, d.intr = nil, nil, nil
}

// do runs f on the event loop, the owner of device and port state, with
// mu held, and returns once it ran. Without a loop (a device never
// started) or once the loop has stopped, no goroutine owns the state any
// more and f runs here, under mu.
func (d *Device) do(f func()) {
	if d.loop == nil || !d.loop.Do(func() { d.locked(f) }) {
		d.locked(f)
	}
}

// locked runs f with mu held, then raises the interrupts f asked for.
// Only the event loop (and do's fallback) calls it.
func (d *Device) locked(f func()) {
	d.mu.Lock()
	if d.onChange != nil {
		d.onChange()
	}
	f()
	intr := d.intr
	var qs []int
	for q := range d.signal {
		qs = append(qs, q)
		delete(d.signal, q)
	}
	d.mu.Unlock()
	if intr != nil {
		for _, q := range qs {
			intr.Signal(q)
		}
	}
}

// notified handles a kick on queue qi.
func (d *Device) notified(qi, fd int) {
	var buf [8]byte
	unix.Read(fd, buf[:]) // non-blocking; the count does not matter
	d.locked(func() {
		if !d.active || qi >= len(d.queues) {
			return
		}
		switch {
		case d.multiport && qi == 2:
			d.flushControl()
		case d.multiport && qi == 3:
			d.readControl()
		default:
			if p := d.portForQueue(qi); p != nil {
				if qi%2 == 1 {
					p.noteTXKick()
				}
				p.pump()
			}
		}
	})
}

// Queue numbering (virtio 1.2 §5.3.2): port 0 uses queues 0 and 1; the
// control queues are 2 and 3; port n ≥ 1 uses 2+2n and 3+2n.
func rxQueueIndex(id uint32) int {
	if id == 0 {
		return 0
	}
	return 2 + 2*int(id)
}

func (d *Device) portForQueue(qi int) *Port {
	if qi < 2 {
		return d.ports[0]
	}
	return d.ports[uint32(qi/2-1)]
}

// queue returns the ready queue qi, or nil. Caller holds mu.
func (d *Device) queue(qi int) *virtio.Queue {
	if !d.active || d.frozen || qi < 0 || qi >= len(d.queues) || d.queues[qi] == nil {
		return nil
	}
	if d.queues[qi].Broken() != nil {
		return nil
	}
	return d.queues[qi]
}

// pushed records that used buffers went to q; the interrupt is raised
// after mu is released, if the driver wants one. Caller holds mu.
func (d *Device) pushed(q *virtio.Queue) {
	if q.NeedsInterrupt() {
		d.signal[q.Index()] = true
	}
}

// logQueueError reports a queue error once (the queue logs breakage
// itself; this names the device context).
func logQueueError(what string, err error) {
	slog.Debug("virtio-serial queue error", "where", what, "err", err)
}
