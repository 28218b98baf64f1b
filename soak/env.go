package soak

import (
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// env is what every part of a run shares: the clock, where the
// backends live, and the list of violations.
type env struct {
	dir     string // sockets and FIFOs
	ptyPath string
	t0      time.Time // streaming start: the guest's first heartbeat

	stopping atomic.Bool // the end has begun: peers losing vmm is expected
	vmmGone  atomic.Bool // vmm exited (a violation of its own if early)

	mu sync.Mutex
	// The fields below are guarded by mu.
	violations []Violation
	log        io.Writer
}

// Violation is one broken promise, named by port, stream offset and time.
type Violation struct {
	T      float64 `json:"t_s"`            // seconds since streaming start
	Port   string  `json:"port,omitempty"` // empty: the VM as a whole
	Dir    string  `json:"dir,omitempty"`  // guest→host or host→guest
	Offset int64   `json:"offset"`         // stream offset, -1 if none
	What   string  `json:"what"`
}

func (v Violation) String() string {
	s := fmt.Sprintf("t=%.2fs", v.T)
	if v.Port != "" {
		s += " port " + v.Port
	}
	if v.Dir != "" {
		s += " " + v.Dir
	}
	if v.Offset >= 0 {
		s += fmt.Sprintf(" offset %d", v.Offset)
	}
	return s + ": " + v.What
}

// expectedLoss says whether a peer losing its connection is explained
// by the end of the run or of vmm; it waits a moment for vmm's exit to
// be noticed, so one early exit is not also reported once per port.
func (e *env) expectedLoss() bool {
	for i := 0; i < 10 && !e.stopping.Load() && !e.vmmGone.Load(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	return e.stopping.Load() || e.vmmGone.Load()
}

func (e *env) since(t time.Time) float64 { return t.Sub(e.t0).Seconds() }

func (e *env) now() float64 { return e.since(time.Now()) }

// qmpPath is vmm's QMP socket.
func (e *env) qmpPath() string { return filepath.Join(e.dir, "qmp.sock") }

func (e *env) violate(port, dir string, off int64, what string) {
	v := Violation{T: e.now(), Port: port, Dir: dir, Offset: off, What: what}
	e.mu.Lock()
	e.violations = append(e.violations, v)
	e.mu.Unlock()
	e.logf("VIOLATION %s", v)
}

func (e *env) logf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.log != nil {
		fmt.Fprintf(e.log, "%8.2fs %s\n", e.now(), fmt.Sprintf(format, args...))
	}
}

func (e *env) sockPath(p PortSpec) string { return filepath.Join(e.dir, p.Name+".sock") }

func (e *env) pipeBase(p PortSpec) string { return filepath.Join(e.dir, p.Name) }
