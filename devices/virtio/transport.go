package virtio

import (
	"fmt"

	"vmm/devices/guestlog"
)

// transportInterrupt is what the status machine needs from a
// transport's interrupt: the device's Interrupt, and a reset.
type transportInterrupt interface {
	Interrupt
	reset()
}

// transport is the state and device-status machine (virtio 1.2 §2.1,
// §3.1) that virtio-mmio and virtio-pci share: feature negotiation,
// activation and reset are the same whatever carries the registers.
// Its fields after intr are guarded by the embedding transport's mu.
type transport struct {
	name    string // for logs, e.g. "virtio-mmio at 0xfeb00000"
	dev     Device
	mem     Memory
	offered uint64
	notify  []int // eventfd per queue
	queues  []*QueueConfig
	intr    transportInterrupt
	log     guestlog.Limiter // what the driver can cause after every reset

	status         uint32
	devFeaturesSel uint32
	drvFeaturesSel uint32
	driverFeatures uint64
	queueSel       uint32
}

// setStatus handles a write of the device status; mu must be held.
func (t *transport) setStatus(v uint32) {
	if v == 0 {
		t.reset()
		return
	}
	old := t.status
	// The driver must not clear bits, and DEVICE_NEEDS_RESET is the
	// device's: keep what is set, ignore the driver's copy of that bit.
	v = v&^statusNeedsReset | old
	if v&statusFeaturesOK != 0 && old&statusFeaturesOK == 0 {
		if err := t.checkFeatures(); err != nil {
			t.log.Warn("virtio: features refused", "transport", t.name, "err", err)
			v &^= statusFeaturesOK
		}
	}
	t.status = v
	if v&statusDriverOK != 0 && old&statusDriverOK == 0 {
		if err := t.activate(); err != nil {
			t.needsReset(err)
		}
	}
}

// checkFeatures validates the driver's choice at FEATURES_OK; mu must be held.
func (t *transport) checkFeatures() error {
	f := t.driverFeatures
	if extra := f &^ t.offered; extra != 0 {
		return fmt.Errorf("driver features %#x include %#x, which were not offered", f, extra)
	}
	if f&FeatureVersion1 == 0 {
		return fmt.Errorf("driver features %#x lack VIRTIO_F_VERSION_1", f)
	}
	return nil
}

// activate starts every ready queue, then the device; mu must be held.
func (t *transport) activate() error {
	if t.status&statusFeaturesOK == 0 {
		return fmt.Errorf("DRIVER_OK without FEATURES_OK")
	}
	rings := make([]*Queue, len(t.queues))
	for i, q := range t.queues {
		if !q.Ready() {
			continue
		}
		r, err := q.Activate(t.mem, t.driverFeatures)
		if err != nil {
			return err
		}
		rings[i] = r
	}
	notifiers := make([]Notifier, len(t.notify))
	for i, fd := range t.notify {
		notifiers[i] = Notifier{FD: fd}
	}
	err := t.dev.Activate(ActivateContext{
		Mem:       t.mem,
		Features:  t.driverFeatures,
		Queues:    rings,
		Notifiers: notifiers,
		Interrupt: t.intr,
	})
	if err != nil {
		return fmt.Errorf("device activation: %w", err)
	}
	return nil
}

// needsReset reports a failure the driver must reset the device for;
// mu must be held.
func (t *transport) needsReset(err error) {
	t.log.Error("virtio: device needs reset", "transport", t.name, "err", err)
	t.status |= statusNeedsReset
	t.intr.ConfigChanged()
}

// reset returns the transport and device to their initial state (status
// 0 written); mu must be held.
func (t *transport) reset() {
	t.dev.Reset()
	for _, q := range t.queues {
		q.Reset()
	}
	t.intr.reset()
	t.status, t.driverFeatures, t.devFeaturesSel, t.drvFeaturesSel, t.queueSel = 0, 0, 0, 0, 0
	for _, fd := range t.notify {
		drainEventFD(fd)
	}
}
