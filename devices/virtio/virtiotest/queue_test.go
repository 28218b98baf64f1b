package virtiotest

import (
	"testing"
	"time"
)

// TestTryAddWaitsForUsed: TryAdd refuses slots still in flight and takes
// them again once the device has returned their chain.
func TestTryAddWaitsForUsed(t *testing.T) {
	mem := make(Mem, 1<<16)
	a := NewAllocator(mem)
	q, err := a.Queue(4, 16)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, ok := q.TryAdd(W(8), R(8)); !ok {
			t.Fatalf("TryAdd(chain %d) = false; want room", i)
		}
	}
	if _, ok := q.TryAdd(W(1)); ok {
		t.Fatalf("TryAdd on a full queue = true; want false")
	}
	// The device uses the second chain (head 2) first.
	e := q.Used + 4
	mem[e] = 2
	q.Put16(q.Used+2, 1)
	if got := q.TakeUsed(); len(got) != 1 || got[0].ID != 2 {
		t.Fatalf("TakeUsed() = %v; want head 2", got)
	}
	if _, ok := q.TryAdd(W(1)); ok {
		t.Errorf("TryAdd into slot 0, still in flight = true; want false")
	}
}

// TestIRQWait: a waiter wakes on the signal it waits for, or times out.
func TestIRQWait(t *testing.T) {
	f := NewIRQ()
	go f.Signal(3)
	if !f.WaitSignals(3, 1, 10*time.Second) {
		t.Fatalf("WaitSignals(3, 1) = false after a signal")
	}
	if f.WaitSignals(1, 1, 10*time.Millisecond) {
		t.Errorf("WaitSignals(1, 1) = true; no signal was sent")
	}
	f.ConfigChanged()
	if f.Signals(3) != 1 || f.Configs() != 1 {
		t.Errorf("Signals(3), Configs() = %d, %d; want 1, 1", f.Signals(3), f.Configs())
	}
}
