package virtio

import (
	"sync"
	"sync/atomic"

	"vmm/devices/pci"
)

// pciInterrupt delivers a virtio-pci device's interrupts: through the
// MSI-X vector the driver chose for the queue (or config) while MSI-X is
// on, else through the ISR and the level-triggered INTx line. Signal
// runs on the device's goroutine, the ISR read on a vCPU.
type pciInterrupt struct {
	cfg        *pci.ConfigSpace
	msix       *pci.MSIX
	intx       func(level bool)
	generation atomic.Uint32
	configVec  atomic.Uint32
	queueVec   []atomic.Uint32

	mu sync.Mutex
	// isr and the line level change together; guarded by mu.
	isr   uint8
	level bool
}

func (i *pciInterrupt) init(cfg *pci.ConfigSpace, msix *pci.MSIX, intx func(bool), queues int) {
	i.cfg, i.msix, i.intx = cfg, msix, intx
	i.queueVec = make([]atomic.Uint32, queues)
	i.reset()
}

// Signal reports used buffers on queue q.
func (i *pciInterrupt) Signal(q int) {
	if i.msix.Enabled() {
		if q >= 0 && q < len(i.queueVec) {
			if v := i.queueVec[q].Load(); v != pciNoVector {
				i.msix.Fire(int(v))
			}
		}
		return
	}
	i.raise(isrUsedBuffer)
}

// ConfigChanged reports a config space change: the ISR bit is set even
// with MSI-X on (virtio 1.2 §4.1.4.5), and the generation bumped.
func (i *pciInterrupt) ConfigChanged() {
	i.generation.Add(1)
	i.raise(isrConfigChanged)
	if v := i.configVec.Load(); v != pciNoVector && i.msix.Enabled() {
		i.msix.Fire(int(v))
	}
}

func (i *pciInterrupt) raise(bit uint8) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.isr |= bit
	i.updateLocked()
}

// readISR returns and clears the ISR, which lowers INTx.
func (i *pciInterrupt) readISR() uint8 {
	i.mu.Lock()
	defer i.mu.Unlock()
	v := i.isr
	i.isr = 0
	i.updateLocked()
	return v
}

// update recomputes the INTx line after MSI-X or the command register
// changed.
func (i *pciInterrupt) update() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.updateLocked()
}

// updateLocked drives INTx: asserted while the ISR is non-zero, MSI-X is
// off and the command register does not disable INTx; mu must be held.
func (i *pciInterrupt) updateLocked() {
	i.cfg.SetInterruptStatus(i.isr != 0)
	want := i.isr != 0 && i.intx != nil && !i.msix.Enabled() && i.cfg.Command()&pci.CommandINTxDisable == 0
	if want != i.level {
		i.level = want
		i.intx(want)
	}
}

// reset clears the ISR (lowering INTx) and unassigns every vector.
func (i *pciInterrupt) reset() {
	i.configVec.Store(pciNoVector)
	for q := range i.queueVec {
		i.queueVec[q].Store(pciNoVector)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.isr = 0
	i.updateLocked()
}
