package virtiotest

// Device status bits (virtio 1.2 §2.1).
const (
	StatusAcknowledge = 1
	StatusDriver      = 2
	StatusDriverOK    = 4
	StatusFeaturesOK  = 8
)

// Transport is a transport's driver-facing registers, reduced to the
// steps of a driver's probe, so one handshake serves mmio and pci tests.
type Transport interface {
	SetStatus(s uint32)
	Status() uint32
	// SetDriverFeatures writes the 32 feature bits selected by sel.
	SetDriverFeatures(sel, bits uint32)
	// SetupQueue selects queue i, sets its size and ring addresses and
	// enables it.
	SetupQueue(i uint32, size uint16, desc, avail, used uint64)
}

// Negotiate runs the driver's steps up to FEATURES_OK with features and
// returns the status read back (FEATURES_OK clear: refused).
func Negotiate(tr Transport, features uint64) uint32 {
	tr.SetStatus(StatusAcknowledge)
	tr.SetStatus(StatusAcknowledge | StatusDriver)
	tr.SetDriverFeatures(0, uint32(features))
	tr.SetDriverFeatures(1, uint32(features>>32))
	tr.SetStatus(StatusAcknowledge | StatusDriver | StatusFeaturesOK)
	return tr.Status()
}

// BringUp negotiates features, sets up queues as laid out and sets
// DRIVER_OK, as Linux's virtio_mmio and virtio_pci do.
func BringUp(tr Transport, features uint64, size uint16, queues ...Layout) {
	Negotiate(tr, features)
	for i, l := range queues {
		tr.SetupQueue(uint32(i), size, l.Desc, l.Avail, l.Used)
	}
	tr.SetStatus(StatusAcknowledge | StatusDriver | StatusFeaturesOK | StatusDriverOK)
}
