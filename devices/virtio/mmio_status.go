package virtio

import (
	"fmt"
	"log/slog"
)

// setStatus runs the device status state machine (virtio 1.2 §2.1, §3.1);
// mu must be held.
func (t *MMIO) setStatus(v uint32) {
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
			slog.Warn("virtio-mmio: features refused", "base", fmt.Sprintf("%#x", t.base), "err", err)
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
func (t *MMIO) checkFeatures() error {
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
func (t *MMIO) activate() error {
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
func (t *MMIO) needsReset(err error) {
	slog.Error("virtio-mmio: device needs reset", "base", fmt.Sprintf("%#x", t.base), "err", err)
	t.status |= statusNeedsReset
	t.irq.ConfigChanged()
}

// reset returns the transport and device to their initial state (status
// 0 written); mu must be held.
func (t *MMIO) reset() {
	t.dev.Reset()
	for _, q := range t.queues {
		q.Reset()
	}
	t.irq.isr.Store(0)
	t.status, t.driverFeatures, t.devFeaturesSel, t.drvFeaturesSel, t.queueSel = 0, 0, 0, 0, 0
	for _, fd := range t.notify {
		drainEventFD(fd)
	}
}
