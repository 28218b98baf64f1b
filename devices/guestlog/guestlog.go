// Package guestlog rate-limits the host log lines a guest can cause.
//
// A guest that repeats a mistake in a loop (a broken ring, refused
// features, a bad MSI-X message, each after a reset) must not flood the
// host's log or grow its memory: each cause is logged at most once per
// Interval, with the number of occurrences so far, and every occurrence
// is counted.
package guestlog

import (
	"log/slog"
	"maps"
	"sync"
	"time"
)

// Interval is the least time between two log lines of one cause.
const Interval = 10 * time.Second

// Limiter counts and rate-limits log lines per cause. The zero value is
// ready to use; a Limiter is safe for concurrent use. Causes are
// constant strings chosen by the caller, never guest data, so their set
// is bounded.
type Limiter struct {
	// Now is time.Now unless a test sets it before first use.
	Now func() time.Time
	// Prefix starts every line's message (e.g. "virtio-serial: "); the
	// counts are keyed by the cause alone.
	Prefix string

	mu     sync.Mutex
	counts map[string]uint64    // guarded by mu
	last   map[string]time.Time // when each cause was last logged; guarded by mu
}

// Warn logs cause at level Warn (see Log).
func (l *Limiter) Warn(cause string, args ...any) { l.Log(slog.LevelWarn, cause, args...) }

// Error logs cause at level Error (see Log).
func (l *Limiter) Error(cause string, args ...any) { l.Log(slog.LevelError, cause, args...) }

// Log counts one occurrence of cause and logs it with args and the count
// so far, unless cause was logged less than Interval ago.
func (l *Limiter) Log(level slog.Level, cause string, args ...any) {
	l.mu.Lock()
	if l.counts == nil {
		l.counts, l.last = map[string]uint64{}, map[string]time.Time{}
	}
	if l.Now == nil {
		l.Now = time.Now
	}
	l.counts[cause]++
	n, now := l.counts[cause], l.Now()
	last, logged := l.last[cause]
	quiet := logged && now.Sub(last) < Interval
	if !quiet {
		l.last[cause] = now
	}
	l.mu.Unlock()
	if !quiet {
		slog.Log(nil, level, l.Prefix+cause, append(args, "occurrences", n)...)
	}
}

// Counts returns how many times each cause occurred, logged or not.
func (l *Limiter) Counts() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.counts)
}
