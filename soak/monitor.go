package soak

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// monitor samples once a second: each port's byte counts (for the
// throughput series and fairness), the vmm process, and the heartbeat;
// and prints the progress line.
type monitor struct {
	env      *env
	peers    []*peer
	pid      int
	guest    *guestLog
	progress io.Writer
	qmp      *qmpConn // vmm's monitor; nil if it could not be reached

	mu sync.Mutex
	// The fields below are guarded by mu.
	series [][]Sample // per port, cumulative
	proc   []ProcSample
	vmm    map[string]VMMPortStats // vmm's latest metrics, by port name
}

// Sample is a port's cumulative bytes at a time.
type Sample struct {
	T   float64 `json:"t_s"`
	G2H int64   `json:"g2h"`
	H2G int64   `json:"h2g"`
}

func (m *monitor) sample(now time.Time) {
	t := m.env.since(now)
	m.guest.check(now)
	m.mu.Lock()
	if m.series == nil {
		m.series = make([][]Sample, len(m.peers))
	}
	for i, p := range m.peers {
		m.series[i] = append(m.series[i], Sample{T: t, G2H: p.read.Load(), H2G: p.written.Load()})
	}
	if rss, fds, err := sampleProc(m.pid); err == nil {
		m.proc = append(m.proc, ProcSample{T: t, RSSKiB: rss, FDs: fds})
	}
	m.mu.Unlock()
	if m.qmp != nil {
		if st, err := m.qmp.portStats(); err == nil {
			m.mu.Lock()
			m.vmm = st
			m.mu.Unlock()
		} else {
			m.env.logf("QMP port stats: %v", err)
		}
	}
	if m.progress != nil {
		m.printProgress(t)
	}
}

func (m *monitor) printProgress(t float64) {
	var b strings.Builder
	fmt.Fprintf(&b, "soak %5.0fs", t)
	throttles, reconnects := 0, 0
	for _, p := range m.peers {
		fmt.Fprintf(&b, " %s %.0f/%.0f", p.spec.Name, mib(p.read.Load()), mib(p.written.Load()))
		p.mu.Lock()
		throttles += p.counts[Slow] + p.counts[Pause] + p.counts[NoReader]
		reconnects += p.counts[Reconnect] + p.counts[Kill] + p.counts[Away]
		p.mu.Unlock()
	}
	m.env.mu.Lock()
	nv := len(m.env.violations)
	m.env.mu.Unlock()
	fmt.Fprintf(&b, " MiB(g→h/h→g) throttles=%d reconnects=%d", throttles, reconnects)
	m.mu.Lock()
	var held uint64
	var throttledMs int64
	for _, s := range m.vmm {
		held += s.BytesHeld
		throttledMs += s.ThrottledMs
	}
	m.mu.Unlock()
	if m.qmp != nil {
		fmt.Fprintf(&b, " vmm(held=%.1fMiB throttled=%.0fs)", mib(int64(held)), float64(throttledMs)/1000)
	}
	if n := len(m.proc); n > 0 {
		fmt.Fprintf(&b, " rss=%.1fMiB fds=%d", float64(m.proc[n-1].RSSKiB)/1024, m.proc[n-1].FDs)
	}
	if nv > 0 {
		fmt.Fprintf(&b, " VIOLATIONS=%d", nv)
	}
	fmt.Fprintln(m.progress, b.String())
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func humanRate(r int64) string {
	if r >= 1<<20 {
		return fmt.Sprintf("%.1f MiB/s", float64(r)/(1<<20))
	}
	return fmt.Sprintf("%d KiB/s", r>>10)
}

// windows turns cumulative samples into bytes per one-second window:
// w[i] is what moved in [i, i+1) seconds (samples come once a second).
func windows(s []Sample, g2h bool) []int64 {
	w := make([]int64, len(s))
	var prev int64
	for i, x := range s {
		v := x.H2G
		if g2h {
			v = x.G2H
		}
		w[i] = v - prev
		prev = v
	}
	return w
}
