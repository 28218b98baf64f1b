package virtio

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"vmm/devices/virtio/virtiotest"
)

// chainShape is what a popped chain's buffers look like.
func chainShape(c *Chain) (rd, wr []int) {
	for _, b := range c.Readable {
		rd = append(rd, len(b))
	}
	for _, b := range c.Writable {
		wr = append(wr, len(b))
	}
	return rd, wr
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPop(t *testing.T) {
	tests := []struct {
		name     string
		indirect bool
		bufs     []virtiotest.Buf
		rd, wr   []int
	}{
		{"one readable", false, []virtiotest.Buf{r(100)}, []int{100}, nil},
		{"one writable", false, []virtiotest.Buf{w(4096)}, nil, []int{4096}},
		{"mixed", false, []virtiotest.Buf{r(16), r(32), w(8), w(64)}, []int{16, 32}, []int{8, 64}},
		{"zero-length skipped", false, []virtiotest.Buf{r(0), r(5), w(0), w(7)}, []int{5}, []int{7}},
		{"whole queue", false, []virtiotest.Buf{r(1), r(1), r(1), r(1), r(1), r(1), r(1), w(1)}, []int{1, 1, 1, 1, 1, 1, 1}, []int{1}},
		{"indirect", true, []virtiotest.Buf{r(12), w(34), w(56)}, []int{12}, []int{34, 56}},
		{"indirect longer than queue", true, []virtiotest.Buf{r(1), r(2), r(3), r(4), r(5), r(6), r(7), r(8), r(9), w(10)},
			[]int{1, 2, 3, 4, 5, 6, 7, 8, 9}, []int{10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, 8, FeatureRingIndirectDesc, nil)
			var head uint16
			if tt.indirect {
				head = d.AddIndirect(tt.bufs...)
			} else {
				head = d.Add(tt.bufs...)
			}
			before := bytes.Clone(d.Mem[:tUsed])
			c := d.mustPop()
			if c.Head != head {
				t.Errorf("Pop().Head = %d; want %d", c.Head, head)
			}
			rd, wr := chainShape(c)
			if !sameInts(rd, tt.rd) || !sameInts(wr, tt.wr) {
				t.Errorf("Pop() buffers = %v/%v; want %v/%v", rd, wr, tt.rd, tt.wr)
			}
			var rl, wl int
			for _, n := range tt.rd {
				rl += n
			}
			for _, n := range tt.wr {
				wl += n
			}
			if int(c.ReadableLen) != rl || int(c.WritableLen) != wl {
				t.Errorf("Pop() lengths = %d/%d; want %d/%d", c.ReadableLen, c.WritableLen, rl, wl)
			}
			if !bytes.Equal(d.Mem[:tUsed], before) {
				t.Errorf("Pop() wrote the descriptor table or avail ring")
			}
			if c, err := d.q.Pop(); c != nil || err != nil {
				t.Errorf("second Pop() = %v, %v; want nil, nil", c, err)
			}
		})
	}
}

// TestPopAliasesGuestMemory checks that buffers are guest memory, not copies.
func TestPopAliasesGuestMemory(t *testing.T) {
	d := newDriver(t, 4, 0, nil)
	d.Add(r(3), w(3))
	c := d.mustPop()
	a := d.DescAddr(0)
	if got, want := c.Readable[0], d.Mem[a:a+3]; !bytes.Equal(got, want) {
		t.Errorf("Readable[0] = %x; want %x", got, want)
	}
	copy(c.Writable[0], "abc")
	b := d.DescAddr(1)
	if got := string(d.Mem[b : b+3]); got != "abc" {
		t.Errorf("guest memory after writing Writable[0] = %q; want %q", got, "abc")
	}
}

// TestPopDirectThenIndirect: the spec lets a direct chain end in an
// indirect descriptor.
func TestPopDirectThenIndirect(t *testing.T) {
	d := newDriver(t, 8, FeatureRingIndirectDesc, nil)
	table := d.Alloc(32)
	d.Link(table, 0, 2, []virtiotest.Buf{r(3), w(4)})
	d.SetDesc(tDesc, 0, d.Alloc(2), 2, descFNext, 1)
	d.SetDesc(tDesc, 1, table, 32, descFIndirect, 0)
	d.Offer(0)
	rd, wr := chainShape(d.mustPop())
	if !sameInts(rd, []int{2, 3}) || !sameInts(wr, []int{4}) {
		t.Errorf("Pop() buffers = %v/%v; want [2 3]/[4]", rd, wr)
	}
}

func TestPushUsed(t *testing.T) {
	d := newDriver(t, 4, 0, nil)
	h1 := d.Add(r(10), w(20))
	h2 := d.Add(w(30))
	c1, c2 := d.mustPop(), d.mustPop()
	// Out of order completion is allowed.
	for _, p := range []struct {
		c *Chain
		n uint32
	}{{c2, 30}, {c1, 5}} {
		if err := d.q.PushUsed(p.c, p.n); err != nil {
			t.Fatalf("PushUsed(%d) = %v; want nil", p.n, err)
		}
	}
	got := d.TakeUsed()
	want := []virtiotest.Used{{ID: uint32(h2), Len: 30}, {ID: uint32(h1), Len: 5}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("used ring = %v; want %v", got, want)
	}
}

func TestPushUsedErrors(t *testing.T) {
	d := newDriver(t, 4, 0, nil)
	other := newDriver(t, 4, 0, nil)
	other.Add(w(1))
	foreign := other.mustPop()
	d.Add(w(8))
	c := d.mustPop()
	if err := d.q.PushUsed(nil, 0); err == nil {
		t.Errorf("PushUsed(nil) = nil; want an error")
	}
	if err := d.q.PushUsed(foreign, 0); err == nil {
		t.Errorf("PushUsed(chain of another queue) = nil; want an error")
	}
	if err := d.q.PushUsed(c, 9); err == nil || !strings.Contains(err.Error(), "queue 0") {
		t.Errorf("PushUsed(written > writable) = %v; want an error naming queue 0", err)
	}
	if err := d.q.PushUsed(c, 8); err != nil {
		t.Errorf("PushUsed(c, 8) = %v; want nil", err)
	}
	if err := d.q.PushUsed(c, 8); err == nil {
		t.Errorf("second PushUsed(c) = nil; want an error")
	}
	d.Add(w(8))
	stale := d.mustPop()
	d.cfg.Reset()
	if err := d.q.PushUsed(stale, 0); err == nil {
		t.Errorf("PushUsed(chain from before Reset) = nil; want an error")
	}
}

func TestNeedsInterrupt(t *testing.T) {
	tests := []struct {
		name      string
		features  uint64
		noIntr    bool   // VRING_AVAIL_F_NO_INTERRUPT
		usedEvent uint16 // used_event, with event idx
		pushes    int
		want      bool
	}{
		{"plain", 0, false, 0, 1, true},
		{"plain suppressed", 0, true, 0, 1, false},
		{"plain nothing pushed", 0, false, 0, 0, false},
		{"event idx hit", FeatureRingEventIdx, false, 0, 1, true},
		{"event idx hit inside batch", FeatureRingEventIdx, false, 1, 3, true},
		{"event idx not reached", FeatureRingEventIdx, false, 5, 3, false},
		{"event idx ignores flag", FeatureRingEventIdx, true, 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDriver(t, 8, tt.features, nil)
			if tt.noIntr {
				d.Put16(tAvail, availFNoInterrupt)
			}
			d.Put16(d.UsedEventAddr(), tt.usedEvent)
			for range tt.pushes {
				d.Add(w(1))
				if err := d.q.PushUsed(d.mustPop(), 0); err != nil {
					t.Fatal(err)
				}
			}
			if got := d.q.NeedsInterrupt(); got != tt.want {
				t.Errorf("NeedsInterrupt() = %v; want %v", got, tt.want)
			}
			if tt.want && d.q.NeedsInterrupt() {
				t.Errorf("NeedsInterrupt() again without pushes = true; want false")
			}
		})
	}
}

// TestNeedsInterruptWindow checks that each call starts a new window: a
// used_event the used idx passed in an earlier window does not signal,
// one crossed in this window does.
func TestNeedsInterruptWindow(t *testing.T) {
	d := newDriver(t, 8, FeatureRingEventIdx, nil)
	d.Put16(d.UsedEventAddr(), 100) // the driver wants nothing yet
	d.cycle(2)
	if d.q.NeedsInterrupt() {
		t.Fatalf("NeedsInterrupt() with used_event ahead = true; want false")
	}
	d.Put16(d.UsedEventAddr(), 1) // passed in the previous window
	d.cycle(1)
	if d.q.NeedsInterrupt() {
		t.Errorf("NeedsInterrupt() with used_event 1, used idx 2 -> 3 = true; want false")
	}
	d.Put16(d.UsedEventAddr(), 4)
	d.cycle(2)
	if !d.q.NeedsInterrupt() {
		t.Errorf("NeedsInterrupt() with used_event 4, used idx 3 -> 5 = false; want true")
	}
}

func TestNotifications(t *testing.T) {
	t.Run("flag", func(t *testing.T) {
		d := newDriver(t, 8, 0, nil)
		d.q.DisableNotifications()
		if f := d.Get16(tUsed); f != usedFNoNotify {
			t.Errorf("used flags after DisableNotifications() = %#x; want %#x", f, usedFNoNotify)
		}
		if d.q.EnableNotifications() {
			t.Errorf("EnableNotifications() on an empty queue = true; want false")
		}
		if f := d.Get16(tUsed); f != 0 {
			t.Errorf("used flags after EnableNotifications() = %#x; want 0", f)
		}
		d.q.DisableNotifications()
		d.Add(r(1))
		if !d.q.EnableNotifications() {
			t.Errorf("EnableNotifications() with a chain pending = false; want true")
		}
	})
	t.Run("event idx", func(t *testing.T) {
		d := newDriver(t, 8, FeatureRingEventIdx, nil)
		d.Add(r(1))
		d.mustPop()
		if e := d.Get16(d.AvailEventAddr()); e != 1 {
			t.Errorf("avail_event after a Pop = %d; want 1", e)
		}
		d.q.DisableNotifications()
		d.Add(r(1))
		d.mustPop()
		if e := d.Get16(d.AvailEventAddr()); e != 1 {
			t.Errorf("avail_event after a Pop with notifications off = %d; want 1", e)
		}
		if d.Get16(tUsed) != 0 {
			t.Errorf("used flags with event idx = %#x; want 0", d.Get16(tUsed))
		}
		d.Add(r(1))
		if !d.q.EnableNotifications() {
			t.Errorf("EnableNotifications() with a chain pending = false; want true")
		}
		if e := d.Get16(d.AvailEventAddr()); e != 2 {
			t.Errorf("avail_event after EnableNotifications() = %d; want 2", e)
		}
		if !d.q.HasAvailable() {
			t.Errorf("HasAvailable() = false; want true")
		}
		d.mustPop()
		if d.q.HasAvailable() {
			t.Errorf("HasAvailable() after popping all = true; want false")
		}
	})
}

// TestSuppressNotifications: after SuppressNotifications the driver's
// next chain asks for no kick (vring_need_event false), where after
// DisableNotifications it still does once; EnableNotifications undoes it.
func TestSuppressNotifications(t *testing.T) {
	d := newDriver(t, 8, FeatureRingEventIdx, nil)
	d.Add(r(1))
	d.mustPop()
	kicks := func() bool { // the driver's test for the chain it just added
		idx := d.Get16(tAvail + 2)
		return needEvent(d.Get16(d.AvailEventAddr()), idx, idx-1)
	}
	d.q.DisableNotifications()
	d.Add(r(1))
	if !kicks() {
		t.Errorf("after DisableNotifications, the next chain kicks = false; want true (avail_event %d)", d.Get16(d.AvailEventAddr()))
	}
	d.mustPop()
	d.q.SuppressNotifications()
	d.Add(r(1))
	if kicks() {
		t.Errorf("after SuppressNotifications, the next chain kicks = true; want false (avail_event %d)", d.Get16(d.AvailEventAddr()))
	}
	if !d.q.HasAvailable() || !d.q.EnableNotifications() {
		t.Fatalf("the chain added with kicks suppressed is not seen")
	}
	d.mustPop()
	d.Add(r(1))
	if !kicks() {
		t.Errorf("after EnableNotifications, the next chain kicks = false; want true")
	}
	f := newDriver(t, 8, 0, nil)
	f.q.SuppressNotifications()
	if fl := f.Get16(tUsed); fl != usedFNoNotify {
		t.Errorf("used flags after SuppressNotifications without event idx = %#x; want %#x", fl, usedFNoNotify)
	}
}

// TestWraparound runs the 16-bit indices across 0xffff -> 0.
func TestWraparound(t *testing.T) {
	for _, features := range []uint64{0, FeatureRingEventIdx} {
		d := newDriver(t, 4, features, nil)
		d.cycle(0xfff0)
		d.Put16(d.UsedEventAddr(), 0xfffe)
		d.q.NeedsInterrupt()
		for i := range 40 {
			d.Add(r(2), w(3))
			d.Add(w(5))
			c1, c2 := d.mustPop(), d.mustPop()
			if c1.ReadableLen != 2 || c2.WritableLen != 5 {
				t.Fatalf("round %d (features %#x): Pop() lengths %d, %d; want 2, 5", i, features, c1.ReadableLen, c2.WritableLen)
			}
			if err := d.q.PushUsed(c1, 3); err != nil {
				t.Fatal(err)
			}
			if err := d.q.PushUsed(c2, 5); err != nil {
				t.Fatal(err)
			}
			if got := d.TakeUsed(); len(got) != 2 || got[0].Len != 3 || got[1].Len != 5 {
				t.Fatalf("round %d (features %#x): used = %v; want lengths 3, 5", i, features, got)
			}
			// With event idx only the push crossing 0xfffe (round 7) signals.
			want := features == 0 || i == 7
			if got := d.q.NeedsInterrupt(); got != want {
				t.Errorf("round %d (features %#x, used idx %#x): NeedsInterrupt() = %v; want %v", i, features, d.Get16(tUsed+2), got, want)
			}
		}
		if d.q.Broken() != nil {
			t.Errorf("Broken() = %v; want nil", d.q.Broken())
		}
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name     string
		features uint64
		setup    func(d *driver)
		want     string
	}{
		{"loop", 0, func(d *driver) {
			d.SetDesc(tDesc, 0, tData, 1, descFNext, 1)
			d.SetDesc(tDesc, 1, tData, 1, descFNext, 0)
			d.Offer(0)
		}, "longer than 8 descriptors"},
		{"self loop", 0, func(d *driver) {
			d.SetDesc(tDesc, 3, tData, 0, descFNext, 3)
			d.Offer(3)
		}, "longer than 8"},
		{"next out of range", 0, func(d *driver) {
			d.SetDesc(tDesc, 0, tData, 1, descFNext, 8)
			d.Offer(0)
		}, "next 8 out of range"},
		{"head out of range", 0, func(d *driver) { d.Offer(8) }, "head 8 out of range"},
		{"outside memory", 0, func(d *driver) {
			d.SetDesc(tDesc, 0, tMemSize-4, 8, 0, 0)
			d.Offer(0)
		}, "not RAM"},
		{"address overflow", 0, func(d *driver) {
			d.SetDesc(tDesc, 0, 1<<64-2, 4, 0, 0)
			d.Offer(0)
		}, "overflows"},
		{"readable after writable", 0, func(d *driver) {
			d.SetDesc(tDesc, 0, tData, 1, descFWrite|descFNext, 1)
			d.SetDesc(tDesc, 1, tData, 0, 0, 0)
			d.Offer(0)
		}, "readable descriptor after a writable"},
		{"indirect not negotiated", 0, func(d *driver) { d.AddIndirect(r(1)) }, "not negotiated"},
		{"nested indirect", FeatureRingIndirectDesc, func(d *driver) {
			d.AddIndirect(r(1))
			d.SetDesc(tData, 0, tData, 16, descFIndirect, 0)
		}, "inside an indirect table"},
		{"indirect with next", FeatureRingIndirectDesc, func(d *driver) {
			d.SetDesc(tDesc, 0, tData, 16, descFIndirect|descFNext, 1)
			d.Offer(0)
		}, "NEXT set"},
		{"indirect length", FeatureRingIndirectDesc, func(d *driver) {
			d.SetDesc(tDesc, 0, tData, 24, descFIndirect, 0)
			d.Offer(0)
		}, "length 24"},
		{"empty indirect", FeatureRingIndirectDesc, func(d *driver) {
			d.SetDesc(tDesc, 0, tData, 0, descFIndirect, 0)
			d.Offer(0)
		}, "length 0"},
		{"indirect loop", FeatureRingIndirectDesc, func(d *driver) {
			d.AddIndirect(r(1), r(1))
			d.SetDesc(d.DescAddr(0), 1, tData, 1, descFNext, 0)
		}, "longer than 2"},
		{"indirect next out of range", FeatureRingIndirectDesc, func(d *driver) {
			d.AddIndirect(r(1), r(1))
			d.SetDesc(d.DescAddr(0), 1, tData, 1, descFNext, 2)
		}, "next 2 out of range (table of 2)"},
		{"too many bytes", 0, func(d *driver) {
			d.Mem = virtiotest.BigMem(d.t)
			d.q = newDriver(d.t, 8, 0, d.Mem).q
			// Overlapping buffers are fine; their sum is not.
			d.SetDesc(tDesc, 0, tData, 0x80000000, descFNext, 1)
			d.SetDesc(tDesc, 1, tData, 0x80000000, 0, 0)
			d.Offer(0)
		}, "more than 4294967295 bytes"},
		{"idx jump", 0, func(d *driver) { d.Put16(tAvail+2, 9) }, "avail idx moved from 0 to 9"},
		{"idx backwards", 0, func(d *driver) { d.Put16(tAvail+2, 0xffff) }, "to 65535"},
		{"head offered twice", 0, func(d *driver) {
			for range 9 {
				d.SetDesc(tDesc, 0, tData, 1, 0, 0)
				d.Offer(0)
				if d.AvailIdx == 8 {
					for range 8 {
						d.mustPop()
					}
				}
			}
		}, "more than 8 chains in flight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := captureLog(t)
			d := newDriver(t, 8, tt.features, nil)
			tt.setup(d)
			c, err := d.q.Pop()
			if c != nil || err == nil || !errors.Is(err, ErrBroken) {
				t.Fatalf("Pop() = %v, %v; want nil and an ErrBroken", c, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "queue 0") || !strings.Contains(msg, tt.want) {
				t.Errorf("Pop() error = %q; want it to name queue 0 and contain %q", msg, tt.want)
			}
			if b := d.q.Broken(); b != err {
				t.Errorf("Broken() = %v; want %v", b, err)
			}
			d.Add(r(1)) // a good chain does not repair the queue
			if _, err2 := d.q.Pop(); err2 != err {
				t.Errorf("Pop() after breaking = %v; want %v", err2, err)
			}
			if l := logLines(log); len(l) != 1 || !strings.Contains(l[0], "queue=0") || !strings.Contains(l[0], tt.want) {
				t.Errorf("log after two failing Pops = %q; want one line naming queue=0 and %q", l, tt.want)
			}
			if d.q.HasAvailable() || d.q.NeedsInterrupt() || d.q.EnableNotifications() {
				t.Errorf("HasAvailable/NeedsInterrupt/EnableNotifications on a broken queue = true; want false")
			}
			d.cfg.Reset()
			if _, err := d.q.Pop(); err == nil {
				t.Errorf("Pop() on a ring stopped by Reset() = nil error; want one")
			}
			clear(d.Mem[tAvail:tData])
			d.activate()
			if d.q.Broken() != nil {
				t.Errorf("Broken() after Reset() and activation = %v; want nil", d.q.Broken())
			}
		})
	}
}

func TestActivateErrors(t *testing.T) {
	tests := []struct {
		name              string
		size              uint16
		desc, avail, used uint64
		notReady          bool
		want              string
	}{
		{"size 0", 0, tDesc, tAvail, tUsed, false, "size 0"},
		{"size not power of 2", 6, tDesc, tAvail, tUsed, false, "size 6"},
		{"size over max", 512, tDesc, tAvail, tUsed, false, "size 512"},
		{"desc misaligned", 8, tDesc + 8, tAvail, tUsed, false, "descriptor table at 0x8 is not 16-byte aligned"},
		{"avail misaligned", 8, tDesc, tAvail + 1, tUsed, false, "avail ring at 0x1001 is not 2-byte aligned"},
		{"used misaligned", 8, tDesc, tAvail, tUsed + 2, false, "used ring at 0x2002 is not 4-byte aligned"},
		{"desc outside RAM", 8, tMemSize - 64, tAvail, tUsed, false, "descriptor table"},
		{"avail outside RAM", 8, tDesc, tMemSize - 2, tUsed, false, "avail ring"},
		{"used overflow", 8, tDesc, tAvail, 1<<64 - 4, false, "used ring"},
		{"not ready", 8, tDesc, tAvail, tUsed, true, "not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueueConfig(3, tMaxSize)
			q.SetSize(tt.size)
			q.SetDescAddr(tt.desc)
			q.SetAvailAddr(tt.avail)
			q.SetUsedAddr(tt.used)
			q.SetReady(!tt.notReady)
			ring, err := q.Activate(make(virtiotest.Mem, tMemSize), 0)
			if ring != nil || err == nil || !strings.Contains(err.Error(), "queue 3") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Activate() = %v, %v; want no ring and an error naming queue 3 and %q", ring, err, tt.want)
			}
		})
	}
}

// TestRegisters checks the transport-side accessors and Reset.
func TestRegisters(t *testing.T) {
	q := NewQueueConfig(2, 64)
	if q.Index() != 2 || q.MaxSize() != 64 || q.Size() != 64 || q.Ready() {
		t.Fatalf("NewQueueConfig(2, 64) = index %d max %d size %d ready %v; want 2 64 64 false", q.Index(), q.MaxSize(), q.Size(), q.Ready())
	}
	q.SetSize(16)
	q.SetDescAddr(0x1000)
	q.SetAvailAddr(0x2000)
	q.SetUsedAddr(0x3000)
	q.SetReady(true)
	if q.Size() != 16 || q.DescAddr() != 0x1000 || q.AvailAddr() != 0x2000 || q.UsedAddr() != 0x3000 || !q.Ready() {
		t.Errorf("after setup: size %d desc %#x avail %#x used %#x ready %v; want 16 0x1000 0x2000 0x3000 true",
			q.Size(), q.DescAddr(), q.AvailAddr(), q.UsedAddr(), q.Ready())
	}
	q.Reset()
	if q.Size() != 64 || q.DescAddr() != 0 || q.AvailAddr() != 0 || q.UsedAddr() != 0 || q.Ready() {
		t.Errorf("after Reset(): size %d desc %#x avail %#x used %#x ready %v; want 64 0 0 0 false",
			q.Size(), q.DescAddr(), q.AvailAddr(), q.UsedAddr(), q.Ready())
	}
}

// TestUnalignedHostRings runs a queue whose rings are not 4-aligned in
// host memory: avail idx then sits in the upper half of a word that
// starts before the ring's slice.
func TestUnalignedHostRings(t *testing.T) {
	backing := make([]byte, tMemSize+2)
	mem := virtiotest.Mem(backing[2:])
	cfg := NewQueueConfig(0, 8)
	cfg.SetSize(8)
	cfg.SetDescAddr(tDesc)
	cfg.SetAvailAddr(tAvail + 2) // 2-aligned guest and host: idx at host 4k+0
	cfg.SetUsedAddr(tUsed)
	cfg.SetReady(true)
	q, err := cfg.Activate(mem, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := &driver{Queue: virtiotest.NewQueue(mem, 8, tLayout), t: t, q: q}
	d.SetDesc(tDesc, 0, tData, 4, descFWrite, 0)
	mem[tAvail+2+4] = 0 // ring[0] = head 0
	mem[tAvail+2+2] = 1 // idx = 1
	c := d.mustPop()
	if err := q.PushUsed(c, 4); err != nil {
		t.Fatal(err)
	}
	if got := d.TakeUsed(); len(got) != 1 || got[0] != (virtiotest.Used{ID: 0, Len: 4}) {
		t.Errorf("used ring = %v; want [{0 4}]", got)
	}
}

// BenchmarkPopPush pops and completes a 4-descriptor chain, re-offering
// the same descriptors each time as a driver recycling buffers would.
func BenchmarkPopPush(b *testing.B) {
	d := newDriver(b, 256, FeatureRingEventIdx, nil)
	head := d.Add(r(16), r(512), w(1024), w(8))
	d.AvailIdx--
	b.ReportAllocs()
	for b.Loop() {
		d.Offer(head)
		c, err := d.q.Pop()
		if err != nil || c == nil {
			b.Fatal(c, err)
		}
		if err := d.q.PushUsed(c, 8); err != nil {
			b.Fatal(err)
		}
		d.q.NeedsInterrupt()
	}
}

// TestConcurrent runs the driver and the device on two goroutines; with
// -race it checks that the ring accesses order the data accesses.
func TestConcurrent(t *testing.T) {
	const total = 20000
	d := newDriver(t, 8, 0, nil)
	done := make(chan error)
	go func() {
		for n := 0; n < total; {
			c, err := d.q.Pop()
			if err != nil {
				done <- err
				return
			}
			if c == nil {
				runtime.Gosched()
				continue
			}
			if len(c.Readable) != 1 || c.Readable[0][0] != byte(n) {
				done <- fmt.Errorf("chain %d: Readable = %v; want one buffer starting %d", n, c.Readable, byte(n))
				return
			}
			copy(c.Writable[0], c.Readable[0])
			if err := d.q.PushUsed(c, c.WritableLen); err != nil {
				done <- err
				return
			}
			d.q.NeedsInterrupt() // reads avail flags while the driver writes them
			n++
		}
		done <- nil
	}()
	inflight := 0
	for sent := 0; sent < total || inflight > 0; {
		inflight -= len(d.TakeUsed())
		if inflight >= int(d.Size)/2 || sent == total {
			runtime.Gosched()
			continue
		}
		// One readable and one writable descriptor, data tagged with sent.
		a := d.Alloc(4)
		d.Mem[a] = byte(sent)
		i := d.Next
		d.SetDesc(tDesc, i, a, 4, descFNext, (i+1)%d.Size)
		d.SetDesc(tDesc, (i+1)%d.Size, d.Alloc(4), 4, descFWrite, 0)
		d.Next = (i + 2) % d.Size
		d.Offer(i)
		d.Put16(tAvail, uint16(sent)&availFNoInterrupt)
		sent++
		inflight++
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestBrokenRingsLogOnce: a driver that breaks its ring, resets the
// queue and breaks the new ring, a thousand times, gets one log line
// (the ring is new each time; the configuration's log is not). Each new
// ring still reports its own break.
func TestBrokenRingsLogOnce(t *testing.T) {
	log := captureLog(t)
	d := newDriver(t, 8, 0, nil)
	for i := range 1000 {
		d.Offer(8) // head out of range
		if _, err := d.q.Pop(); !errors.Is(err, ErrBroken) {
			t.Fatalf("round %d: Pop() = %v; want an ErrBroken", i, err)
		}
		d.cfg.Reset()
		clear(d.Mem[tAvail : tAvail+4])
		d.AvailIdx = 0
		d.activate()
	}
	if l := logLines(log); len(l) != 1 || !strings.Contains(l[0], "head 8 out of range") || !strings.Contains(l[0], "occurrences=1") {
		t.Errorf("log after 1000 broken rings = %q; want one line (the first)", l)
	}
	if n := d.cfg.log.Counts()["virtio queue broken"]; n != 1000 {
		t.Errorf("broken rings counted = %d; want 1000", n)
	}
}
