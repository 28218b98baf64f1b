package nested

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"sync"
)

// ErrOuterHung is returned when the outer machine's kernel reported a
// soft lockup of lockupLimit or more: a CPU of the outer machine has not
// come back from running a nested guest for minutes of its own time.
// Under load QEMU's TCG emulation of SVM has been seen to leave both
// outer CPUs inside VMRUN this way for the rest of a 25-minute run, so
// waiting for the timeout only costs time; the verdict is unknown, as
// after ErrOuterCrashed.
var ErrOuterHung = errors.New("the outer machine's kernel reported a soft lockup")

// Retryable reports whether err says the outer machine failed on its own
// (it panicked, hung, went silent or outlived the command's own
// timeout), so that running the command again is fair.
func Retryable(err error) bool {
	for _, e := range []error{ErrOuterCrashed, ErrOuterHung, ErrOuterSilent, ErrOuterTimeout} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// lockupLimit is how long a soft lockup (the outer kernel's watchdog
// reports one every ~26 s of its time while it lasts) may last before
// the run is given up: long enough for a slow but live nested guest.
const lockupLimit = 120

var softLockup = regexp.MustCompile(`soft lockup - CPU#\d+ stuck for (\d+)s!`)

// lockupWatch scans the outer machine's console line by line and calls
// hung once, on the first soft lockup of lockupLimit seconds or more.
type lockupWatch struct {
	hung func()

	mu   sync.Mutex
	line []byte // the unfinished last line; guarded by mu
	done bool   // hung was called; guarded by mu
}

func (w *lockupWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		w.check(w.line[:i])
		w.line = w.line[i+1:]
	}
	// A console line is short; a newline-free flood is not a report.
	if len(w.line) > 4096 {
		w.line = w.line[:0]
	}
	return len(p), nil
}

func (w *lockupWatch) check(line []byte) {
	m := softLockup.FindSubmatch(line)
	if m == nil || w.done {
		return
	}
	if s, err := strconv.Atoi(string(m[1])); err == nil && s >= lockupLimit {
		w.done = true
		w.hung()
	}
}
