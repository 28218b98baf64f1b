package nested

import (
	"fmt"
	"testing"
)

// TestLockupWatch feeds the outer console of a real hung run (two outer
// CPUs stuck inside a nested guest, reported every ~26 s) in uneven
// pieces: the watch fires once, at the first report of lockupLimit
// seconds or more, and not for shorter lockups or other lines.
func TestLockupWatch(t *testing.T) {
	var console string
	for i, s := range []int{26, 52, 78, 104, 130, 156} {
		console += fmt.Sprintf("[ %4d.333958] watchdog: BUG: soft lockup - CPU#0 stuck for %ds! [vmm:156]\r\n", 89+28*i, s)
		console += fmt.Sprintf("[ %4d.450489] watchdog: BUG: soft lockup - CPU#1 stuck for %ds! [vmm:151]\r\n", 89+28*i, s+1)
		if s == 104 {
			console += "    stock_test.go:165: kernel log: stuck for 999s! (not a watchdog line)\n"
		}
	}
	fired, firedAt := 0, -1
	w := &lockupWatch{}
	fed, end := 0, 0
	w.hung = func() { fired++; firedAt = end }
	for step := 1; fed < len(console); step = step%7 + 1 {
		end = min(fed+step, len(console))
		if n, err := w.Write([]byte(console[fed:end])); n != end-fed || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, end-fed)
		}
		fed = end
	}
	if fired != 1 {
		t.Fatalf("hung called %d times; want once", fired)
	}
	want := len(console[:indexAfter(console, "stuck for 130s! [vmm:156]")])
	if firedAt < want || firedAt >= want+7 {
		t.Errorf("hung called in a write ending at byte %d; want the write holding the end of the 130 s line (%d)", firedAt, want)
	}

	quiet := &lockupWatch{hung: func() { t.Error("hung called for lockups under the limit") }}
	fmt.Fprintf(quiet, "watchdog: BUG: soft lockup - CPU#0 stuck for %ds! [vmm:1]\n", lockupLimit-1)
	fmt.Fprintf(quiet, "watchdog: BUG: soft lockup - CPU#0 stuck for %ds! [vmm:1]", lockupLimit) // no newline yet
}

// indexAfter returns the index just past the line holding s.
func indexAfter(text, s string) int {
	i := 0
	for ; i+len(s) <= len(text) && text[i:i+len(s)] != s; i++ {
	}
	for i < len(text) && text[i] != '\n' {
		i++
	}
	return i + 1
}
