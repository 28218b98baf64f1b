package nested

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestHeartbeatFiltered feeds a console with heartbeat lines among
// others, cut into chunks at every offset, and checks that exactly the
// heartbeat lines are gone and everything else arrives in order.
func TestHeartbeatFiltered(t *testing.T) {
	beat := heartbeatLine + "\n"
	in := "boot\n" + beat + "=== RUN TestX\n" + beat + beat + heartbeatLine + " not quite\n" +
		"nested-rig: al" + "ive? no\n" + "x" + beat + "tail without newline " + heartbeatLine[:5]
	want := "boot\n=== RUN TestX\n" + heartbeatLine + " not quite\nnested-rig: alive? no\nx" + beat +
		"tail without newline " + heartbeatLine[:5]
	for cut := 1; cut <= len(in); cut++ {
		var out bytes.Buffer
		beats := 0
		h := newHeartbeat(&out, func() { beats++ })
		for i := 0; i < len(in); i += cut {
			j := min(i+cut, len(in))
			if n, err := h.Write([]byte(in[i:j])); n != j-i || err != nil {
				t.Fatalf("cut %d: Write = %d, %v", cut, n, err)
			}
		}
		h.flush()
		if out.String() != want {
			t.Fatalf("cut %d: got %q, want %q", cut, out.String(), want)
		}
		if beats != 3 {
			t.Fatalf("cut %d: %d heartbeats seen; want 3", cut, beats)
		}
	}
}

// TestSilenceWatch: a console that keeps talking is left alone; one that
// stops is reported once the limit has passed, and not before.
func TestSilenceWatch(t *testing.T) {
	const limit = 360 * time.Millisecond
	var out strings.Builder
	h := newHeartbeat(&out, nil)
	silent := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watchSilence(ctx, h, limit, func() { silent <- time.Now() })
	for i := 0; i < 10; i++ {
		time.Sleep(limit / 4)
		h.Write([]byte(heartbeatLine + "\n"))
	}
	select {
	case <-silent:
		t.Fatal("reported silence while the heartbeat came")
	default:
	}
	quiet := time.Now()
	select {
	case at := <-silent:
		if d := at.Sub(quiet); d < limit {
			t.Fatalf("reported silence after %v, before the limit %v", d, limit)
		}
	case <-time.After(10 * limit):
		t.Fatal("silence never reported")
	}
	if out.Len() != 0 {
		t.Fatalf("heartbeats reached the console: %q", out.String())
	}
}

// TestCRLFAcrossWrites: L1's tty ends lines with CR LF, and QEMU's
// writes may cut between them; the CR goes either way, and the
// heartbeat behind it is still recognised.
func TestCRLFAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	beats := 0
	c := &crlf{w: newHeartbeat(&out, func() { beats++ })}
	for _, w := range []string{"a\r", "\nb\r\n" + heartbeatLine + "\r", "\nx\ry\r", "\r", "\n", "c\r"} {
		if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
	}
	c.flush()
	if want := "a\nb\nx\ry\r\nc\r"; out.String() != want || beats != 1 {
		t.Errorf("console = %q with %d heartbeats; want %q and 1", out.String(), beats, want)
	}
}
