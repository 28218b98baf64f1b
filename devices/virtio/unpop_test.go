package virtio

import "testing"

// TestUnpop: chains popped ahead and given back, last first, come back
// from Pop in the same order with the same buffers; a chain that is not
// the last popped is refused, and the used ring sees only what was
// pushed.
func TestUnpop(t *testing.T) {
	for _, features := range []uint64{0, FeatureRingEventIdx} {
		d := newDriver(t, 4, features, nil)
		h1 := d.Add(r(10))
		h2 := d.Add(r(20))
		h3 := d.Add(r(30))
		c1, c2, c3 := d.mustPop(), d.mustPop(), d.mustPop()
		if err := d.q.Unpop(c2); err == nil {
			t.Errorf("features %#x: Unpop(second of three) = nil; want an error", features)
		}
		if err := d.q.Unpop(c3); err != nil {
			t.Fatalf("features %#x: Unpop(last) = %v; want nil", features, err)
		}
		if err := d.q.Unpop(c2); err != nil {
			t.Fatalf("features %#x: Unpop(second, now last) = %v; want nil", features, err)
		}
		if features&FeatureRingEventIdx != 0 {
			// avail_event is back at the next chain to pop (c2): a chain
			// the driver adds now gets its kick.
			if got := d.Get16(d.AvailEventAddr()); got != 1 {
				t.Errorf("avail_event after Unpop = %d; want 1", got)
			}
		}
		if err := d.q.PushUsed(c1, 0); err != nil {
			t.Fatalf("features %#x: PushUsed(first) = %v", features, err)
		}
		for _, want := range []struct {
			head uint16
			n    uint32
		}{{h2, 20}, {h3, 30}} {
			c := d.mustPop()
			if c.Head != want.head || c.ReadableLen != want.n {
				t.Errorf("features %#x: Pop() after Unpop = head %d, %d bytes; want head %d, %d bytes", features, c.Head, c.ReadableLen, want.head, want.n)
			}
			if err := d.q.PushUsed(c, 0); err != nil {
				t.Fatalf("PushUsed = %v", err)
			}
		}
		if c, err := d.q.Pop(); c != nil || err != nil {
			t.Errorf("features %#x: Pop() at the end = %v, %v; want nil, nil", features, c, err)
		}
		got := d.TakeUsed()
		if len(got) != 3 || got[0].ID != uint32(h1) || got[1].ID != uint32(h2) || got[2].ID != uint32(h3) {
			t.Errorf("features %#x: used ring = %v; want heads %d, %d, %d", features, got, h1, h2, h3)
		}
		if err := d.q.Unpop(c1); err == nil {
			t.Errorf("features %#x: Unpop(a pushed chain) = nil; want an error", features)
		}
	}
}
