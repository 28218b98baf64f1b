package nested

import (
	"errors"
	"io"
	"sync"
	"time"
)

// ErrOuterSilent is returned when the outer machine's console stayed
// silent for silenceLimit: not even the heartbeat that a shell loop in
// L1 prints every heartbeatEvery came. L1 then no longer runs its own
// user space (its CPUs are stuck in TCG's SVM emulation without a
// watchdog report). A CI run once waited out a whole 12-minute try
// that way with nothing on the console.
var ErrOuterSilent = errors.New("the outer machine's console went silent (no heartbeat)")

// ErrOuterTimeout is returned when the command outlived its try while
// L1 still printed its heartbeat. The rig's own commands carry a
// shorter timeout of their own (a test binary's -test.timeout), so
// this too means the outer machine failed, e.g. a process stuck in 9p.
var ErrOuterTimeout = errors.New("the outer machine timed out")

// MarkInterruptLost starts a line a test in the outer machine logs when
// a guest's vCPU kept an interrupt pending that it could take: L1's KVM
// on TCG's emulated SVM did not deliver it (seen as a guest stuck in a
// loop with its timer interrupt pending). The rig runs such a test once
// more in a new outer machine.
const MarkInterruptLost = "nested-rig: the outer machine lost an interrupt"

const (
	// heartbeatEvery is how often (L1's time) cmd.sh's background
	// loop prints heartbeatLine.
	heartbeatEvery = 15 * time.Second
	// silenceLimit is how long the console may say nothing before L1 is
	// given up; it covers L1's boot (10-60 s under load), before the
	// heartbeat starts.
	silenceLimit = 3 * time.Minute
	// heartbeatLine is what the loop prints; heartbeat drops it from
	// what the caller sees.
	heartbeatLine = "nested-rig: alive"
)

// heartbeat passes the console through to w without the heartbeat
// lines, and records when the console last said anything.
type heartbeat struct {
	beat func() // called for each heartbeat line, under mu; may be nil

	mu    sync.Mutex
	w     io.Writer // guarded by mu
	last  time.Time // guarded by mu
	mid   bool      // the last byte passed on was not a newline; guarded by mu
	held  []byte    // a line start that may be the heartbeat; guarded by mu
	spare []byte    // reused for what is passed on; guarded by mu
}

func newHeartbeat(w io.Writer, beat func()) *heartbeat {
	return &heartbeat{w: w, beat: beat, last: time.Now()}
}

func (h *heartbeat) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = time.Now()
	const beat = heartbeatLine + "\n"
	out := h.spare[:0]
	for _, c := range p {
		if h.mid && len(h.held) == 0 {
			out = append(out, c)
			h.mid = c != '\n'
			continue
		}
		h.held = append(h.held, c)
		switch {
		case string(h.held) == beat:
			h.held, h.mid = h.held[:0], false
			if h.beat != nil {
				h.beat()
			}
		case len(h.held) < len(beat) && beat[:len(h.held)] == string(h.held):
			// Maybe the heartbeat: hold on.
		default:
			out = append(out, h.held...)
			h.held, h.mid = h.held[:0], c != '\n'
		}
	}
	h.spare = out
	if len(out) > 0 {
		if _, err := h.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush passes on a held partial line, once the console has ended.
func (h *heartbeat) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.held) > 0 {
		h.w.Write(h.held)
		h.held = h.held[:0]
	}
}

// silentFor is how long the console has said nothing.
func (h *heartbeat) silentFor() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Since(h.last)
}
