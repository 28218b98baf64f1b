package virtioserial

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReplyPolling: a guest that answers its input at once has its
// next answer written out without a kick; input left unanswered for the
// window turns polling off, and kicks work as before.
func TestReplyPolling(t *testing.T) {
	r := newRig(t, 2, PortConfig{Nr: -1, Name: "p"})
	const window = 300 * time.Millisecond // one the test cannot miss under -race
	r.dev.do(func() { r.dev.replyWindow = window })
	host := r.openPort(t, "p", 1, unix.SOCK_STREAM)
	txq := rxQueueIndex(1) + 1
	polling := func() (on bool) {
		r.dev.do(func() { on = r.dev.ports[1].replyPoll })
		return on
	}
	ask := func(b byte) {
		t.Helper()
		if _, err := unix.Write(host, []byte{b}); err != nil {
			t.Fatal(err)
		}
		var got []byte
		r.waitFor("the input in the guest", func() bool { got = append(got, r.read(1)...); return len(got) > 0 })
		if string(got) != string(b) {
			t.Fatalf("guest read %q; want %q", got, b)
		}
	}
	answer := func(want string) {
		t.Helper()
		if got := readAll(t, host, len(want)); string(got) != want {
			t.Fatalf("host read %q; want %q", got, want)
		}
	}

	if polling() {
		t.Fatal("polling on before any answer")
	}
	ask('a')
	r.write(1, []byte("A")) // answered at once, with a kick
	answer("A")
	if !polling() {
		t.Fatal("polling off after an answer within the window")
	}

	ask('b')
	r.put(1, []byte("B")) // no kick: the device must be watching
	answer("B")
	if !polling() {
		t.Fatal("polling off after an answer the watch saw")
	}

	ask('c') // unanswered: the watch gives up after the window
	r.waitFor("polling off", func() bool { return !polling() })
	if f := r.mq[txq].Get16(r.mq[txq].Used); f&1 != 0 {
		t.Fatalf("used flags %#x after the watch gave up; want kicks on (no VRING_USED_F_NO_NOTIFY)", f)
	}
	time.Sleep(2 * window) // an answer this late is not a reason to poll
	r.write(1, []byte("C"))
	answer("C")
	if polling() {
		t.Fatal("polling on after an answer later than the window")
	}
	if s := r.stats(1); s.BytesOut != 3 || s.BytesIn != 3 {
		t.Errorf("stats: %d bytes out, %d in; want 3 and 3", s.BytesOut, s.BytesIn)
	}
}
