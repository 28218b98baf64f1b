package devices

import "testing"

// TestPVPanic: a read tells the guest which events exist (what Linux's
// driver checks before it registers); a write reports the known bits.
func TestPVPanic(t *testing.T) {
	var got []byte
	p := NewPVPanic(func(ev byte) { got = append(got, ev) })
	b := []byte{0xff}
	p.Read(0, b)
	if b[0] != PanicPanicked|PanicCrashLoaded {
		t.Errorf("Read = %#x; want %#x", b[0], PanicPanicked|PanicCrashLoaded)
	}
	for _, w := range []byte{0, PanicPanicked, PanicCrashLoaded, 0xfc, 0xff} {
		p.Write(0, []byte{w})
	}
	p.Write(0, nil)
	want := []byte{PanicPanicked, PanicCrashLoaded, PanicPanicked | PanicCrashLoaded}
	if string(got) != string(want) {
		t.Errorf("events = %v; want %v (0 and unknown bits alone report nothing)", got, want)
	}
}
