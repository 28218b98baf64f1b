package virtio

import (
	"fmt"
	"log/slog"
)

// The device status state machine, as on the mmio transport (virtio 1.2
// §2.1, §3.1); the checks and activation order are the same.

// setStatus handles a device_status write; mu must be held.
func (t *PCI) setStatus(v uint32) {
	if v == 0 {
		t.reset()
		return
	}
	old := t.status
	v = v&^statusNeedsReset | old
	if v&statusFeaturesOK != 0 && old&statusFeaturesOK == 0 {
		if err := t.checkFeatures(); err != nil {
			slog.Warn("virtio-pci: features refused", "bar", fmt.Sprintf("%#x", t.opts.BARAddr), "err", err)
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
func (t *PCI) checkFeatures() error {
	f := t.driverFeatures
	if extra := f &^ t.offered; extra != 0 {
		return fmt.Errorf("driver features %#x include %#x, which were not offered", f, extra)
	}
	if f&FeatureVersion1 == 0 {
		return fmt.Errorf("driver features %#x lack VIRTIO_F_VERSION_1", f)
	}
	return nil
}

// activate starts every enabled queue, then the device; mu must be held.
func (t *PCI) activate() error {
	if t.status&statusFeaturesOK == 0 {
		return fmt.Errorf("DRIVER_OK without FEATURES_OK")
	}
	for _, q := range t.queues {
		if !q.Ready() {
			continue
		}
		if err := q.Activate(t.mem, t.driverFeatures); err != nil {
			return err
		}
	}
	notifiers := make([]Notifier, len(t.notify))
	for i, fd := range t.notify {
		notifiers[i] = Notifier{FD: fd}
	}
	err := t.dev.Activate(ActivateContext{
		Mem:       t.mem,
		Features:  t.driverFeatures,
		Queues:    t.queues,
		Notifiers: notifiers,
		Interrupt: &t.irq,
	})
	if err != nil {
		return fmt.Errorf("device activation: %w", err)
	}
	return nil
}

// needsReset reports a failure the driver must reset the device for;
// mu must be held.
func (t *PCI) needsReset(err error) {
	slog.Error("virtio-pci: device needs reset", "bar", fmt.Sprintf("%#x", t.opts.BARAddr), "err", err)
	t.status |= statusNeedsReset
	t.irq.ConfigChanged()
}

// reset returns the transport and device to their initial state; the
// MSI-X table is PCI function state and survives. mu must be held.
func (t *PCI) reset() {
	t.dev.Reset()
	for _, q := range t.queues {
		q.Reset()
	}
	t.irq.reset()
	t.status, t.driverFeatures, t.devFeaturesSel, t.drvFeaturesSel, t.queueSel = 0, 0, 0, 0, 0
	for _, fd := range t.notify {
		drainEventFD(fd)
	}
}
