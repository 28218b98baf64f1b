package soak

import (
	"context"
	"sync"
	"time"
)

// scheduler plays the schedule: reader-side chaos (slow, pause) through
// the peer's knobs, departures through its manager.
type scheduler struct {
	env   *env
	peers []*peer
	wg    sync.WaitGroup

	mu sync.Mutex
	// The fields below are guarded by mu.
	intervals []Interval
}

// run plays sched; the caller has done s.wg.Add(1).
func (s *scheduler) run(ctx context.Context, sched *Schedule) {
	defer s.wg.Done()
	for _, e := range sched.Events {
		if !sleep(ctx, time.Until(s.env.t0.Add(e.At.D()))) {
			return
		}
		p := s.peers[e.Port]
		start := s.env.now()
		s.env.logf("port %s: %s for %v%s", p.spec.Name, e.Kind, e.For.D(), rateNote(e))
		switch e.Kind {
		case Slow:
			p.rate.Store(e.Rate)
			p.count(Slow)
			s.after(ctx, e.For.D(), func() { p.rate.Store(0) })
		case Pause:
			p.paused.Store(true)
			p.count(Pause)
			s.after(ctx, e.For.D(), func() { p.paused.Store(false) })
		case Corrupt:
			p.corrupt.Store(true)
			p.count(Corrupt)
			continue // no interval: nothing is blocked
		default:
			p.cmds <- e
		}
		s.mu.Lock()
		s.intervals = append(s.intervals, Interval{Port: e.Port, Kind: e.Kind, Start: start, End: start + e.For.D().Seconds()})
		s.mu.Unlock()
	}
}

// after runs f once d has passed, or at once when ctx ends.
func (s *scheduler) after(ctx context.Context, d time.Duration, f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sleep(ctx, d)
		f()
	}()
}

func (s *scheduler) wait() { s.wg.Wait() }

func (s *scheduler) snapshot() []Interval {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Interval(nil), s.intervals...)
}

func rateNote(e Event) string {
	if e.Kind == Slow {
		return " at " + humanRate(e.Rate)
	}
	return ""
}
