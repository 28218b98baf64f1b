package soak

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFillCheck(t *testing.T) {
	for _, off := range []int64{0, 1, 7, 8, 1 << 40} {
		b := make([]byte, 77)
		Fill(b, off)
		for i := range b {
			if b[i] != PatternByte(off+int64(i)) {
				t.Fatalf("Fill(off %d)[%d] = %#x; want %#x", off, i, b[i], PatternByte(off+int64(i)))
			}
		}
		if i := Check(b, off); i != -1 {
			t.Errorf("Check(Fill(%d), %d) = %d; want -1", off, off, i)
		}
		b[40] ^= 1
		if i := Check(b, off); i != 40 {
			t.Errorf("Check with byte 40 flipped at off %d = %d; want 40", off, i)
		}
	}
}

func TestVerifier(t *testing.T) {
	var v Verifier
	b := make([]byte, 1000)
	Fill(b, 0)
	if m := v.Feed(b[:600]); m != nil {
		t.Fatalf("Feed(good) = %v; want nil", m)
	}
	// A departing peer left 100 bytes unread: the next resumes after them.
	v.Skip(100)
	if m := v.Feed(b[700:]); m != nil || v.Offset != 1000 {
		t.Fatalf("after Skip(100), Feed(bytes 700..) = %v, offset %d; want nil, 1000", m, v.Offset)
	}
	// A lost byte: the stream jumps one ahead.
	c := make([]byte, 64)
	Fill(c, 1001)
	m := v.Feed(c)
	if m == nil || m.Offset != 1000 || m.Want != PatternByte(1000) {
		t.Fatalf("Feed(skipped a byte) = %v; want a mismatch at offset 1000", m)
	}
	if !strings.Contains(m.Error(), "offset 1000") {
		t.Errorf("Mismatch.Error() = %q; want it to name offset 1000", m.Error())
	}
	// A duplicated stretch.
	var d Verifier
	d.Feed(b[:500])
	if m := d.Feed(b[400:500]); m == nil || m.Offset != 500 {
		t.Errorf("Feed(repeat of 400..500) = %v; want a mismatch at 500", m)
	}
	// Later bytes are counted, not rechecked.
	if m := v.Feed(c); m != nil || v.Offset != 1128 {
		t.Errorf("second Feed after a mismatch = %v, offset %d; want nil, 1128", m, v.Offset)
	}
}

func TestGuestLogLines(t *testing.T) {
	e := &env{t0: time.Now()}
	g := &guestLog{env: e, bound: time.Second, first: make(chan struct{})}
	in := "guest: hello\nguest: heartbeat 100\nguest: heartbeat 200\n" +
		"guest: vs p3:r:1000G mismatch at offset 12345 got 0xbf want 0x40\n" +
		"guest: vs p5 stalled at offset 99\n"
	g.scan(strings.NewReader(in), &bytes.Buffer{})
	if len(e.violations) != 2 {
		t.Fatalf("violations = %v; want the mismatch and the stall", e.violations)
	}
	if v := e.violations[0]; v.Port != "p3" || v.Offset != 12345 || v.Dir != "host→guest" {
		t.Errorf("mismatch violation = %+v; want port p3 host→guest offset 12345", v)
	}
	if v := e.violations[1]; v.Port != "p5" || v.Offset != 99 {
		t.Errorf("stall violation = %+v; want port p5 offset 99", v)
	}
	if s := g.stats(); s.Count != 2 || s.MaxGuestGapMS != 100 {
		t.Errorf("stats = %+v; want 2 heartbeats, guest gap 100 ms", s)
	}
}

func TestHeartbeatLate(t *testing.T) {
	e := &env{}
	g := &guestLog{env: e, bound: 50 * time.Millisecond, first: make(chan struct{})}
	now := time.Now()
	g.beat(now, 0)
	g.beat(now.Add(40*time.Millisecond), 40)
	g.check(now.Add(200 * time.Millisecond)) // overdue, no line yet
	g.beat(now.Add(300*time.Millisecond), 300)
	if len(e.violations) != 1 || !strings.Contains(e.violations[0].What, "heartbeat late") {
		t.Fatalf("violations = %v; want one late heartbeat (reported once per gap)", e.violations)
	}
	if s := g.stats(); s.MaxGapMS != 260 {
		t.Errorf("max gap = %v ms; want 260", s.MaxGapMS)
	}
}
