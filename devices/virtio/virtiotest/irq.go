package virtiotest

import (
	"sync"
	"time"
)

// IRQ is a virtio.Interrupt that counts signals per queue and config
// changes, for tests that check when a device interrupts the driver.
type IRQ struct {
	mu      sync.Mutex
	cond    *sync.Cond
	signals map[int]int // guarded by mu
	configs int         // guarded by mu
}

// NewIRQ is an interrupt sink with nothing counted.
func NewIRQ() *IRQ {
	f := &IRQ{signals: map[int]int{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// Signal counts one used-buffer interrupt on queue q.
func (f *IRQ) Signal(q int) {
	f.mu.Lock()
	f.signals[q]++
	f.cond.Broadcast()
	f.mu.Unlock()
}

// ConfigChanged counts one config-change interrupt.
func (f *IRQ) ConfigChanged() {
	f.mu.Lock()
	f.configs++
	f.cond.Broadcast()
	f.mu.Unlock()
}

// Signals is how many interrupts queue q has had.
func (f *IRQ) Signals(q int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.signals[q]
}

// Configs is how many config-change interrupts there were.
func (f *IRQ) Configs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.configs
}

// WaitSignals waits until queue q has had at least n interrupts and
// reports whether it did before timeout.
func (f *IRQ) WaitSignals(q, n int, timeout time.Duration) bool {
	t := time.AfterFunc(timeout, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer t.Stop()
	deadline := time.Now().Add(timeout)
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.signals[q] < n {
		if !time.Now().Before(deadline) {
			return false
		}
		f.cond.Wait()
	}
	return true
}
