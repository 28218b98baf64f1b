package soak

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// guestLog reads the guest's COM1 (vmm's stdout): heartbeat timing, and
// the guest's own verdicts on the host→guest streams.
type guestLog struct {
	env   *env
	bound time.Duration
	first chan struct{} // closed at the first heartbeat

	mu sync.Mutex
	// The fields below are guarded by mu.
	count        int
	last         time.Time
	lastGuestMS  int64
	maxGap       time.Duration
	maxGapAt     float64
	maxGuestGap  int64 // ms, by the guest's own clock
	flagged      bool  // the current gap was already reported
	started      bool
	guestVerdict []string
}

var (
	heartbeatRE = regexp.MustCompile(`^guest: heartbeat (\d+)$`)
	mismatchRE  = regexp.MustCompile(`^guest: vs (\S+?):r:\S+ mismatch at offset (\d+) got (0x[0-9a-f]+) want (0x[0-9a-f]+)`)
	stalledRE   = regexp.MustCompile(`^guest: vs (\S+?)(?::[rw]:\S+)? stalled at offset (\d+)`)
)

// scan reads lines until EOF, copying them to w.
func (g *guestLog) scan(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		now := time.Now()
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintln(w, line)
		if m := heartbeatRE.FindStringSubmatch(line); m != nil {
			ms, _ := strconv.ParseInt(m[1], 10, 64)
			g.beat(now, ms)
			continue
		}
		if !g.isStarted() {
			continue
		}
		if m := mismatchRE.FindStringSubmatch(line); m != nil {
			off, _ := strconv.ParseInt(m[2], 10, 64)
			g.env.violate(m[1], "host→guest", off, fmt.Sprintf("guest read %s, the stream has %s (%q)", m[3], m[4], line))
		} else if m := stalledRE.FindStringSubmatch(line); m != nil {
			off, _ := strconv.ParseInt(m[2], 10, 64)
			g.env.violate(m[1], "", off, "guest job stalled: "+line)
		} else if strings.Contains(line, "mismatch") || strings.Contains(line, "stalled") {
			g.env.violate("", "", -1, "guest: "+line)
		}
	}
}

func (g *guestLog) isStarted() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started
}

func (g *guestLog) beat(now time.Time, ms int64) {
	g.mu.Lock()
	if !g.started {
		g.started = true
		g.env.t0 = now // read by others only after first is closed
		g.last, g.lastGuestMS = now, ms
		g.count = 1
		g.mu.Unlock()
		close(g.first)
		return
	}
	gap := now.Sub(g.last)
	g.count++
	if gap > g.maxGap {
		g.maxGap, g.maxGapAt = gap, g.env.since(g.last)
	}
	g.maxGuestGap = max(g.maxGuestGap, ms-g.lastGuestMS)
	report := gap > g.bound && !g.flagged && !g.env.stopping.Load()
	from := g.env.since(g.last)
	g.last, g.lastGuestMS, g.flagged = now, ms, false
	g.mu.Unlock()
	if report {
		g.env.violate("", "", -1, fmt.Sprintf("heartbeat late: %v after the one at t=%.2fs (bound %v)", gap.Round(time.Millisecond), from, g.bound))
	}
}

// check reports a heartbeat that is overdue even though no line came,
// once per gap.
func (g *guestLog) check(now time.Time) {
	g.mu.Lock()
	if !g.started || g.flagged || g.env.stopping.Load() {
		g.mu.Unlock()
		return
	}
	gap := now.Sub(g.last)
	late := gap > g.bound
	if late {
		g.flagged = true
		if gap > g.maxGap {
			g.maxGap, g.maxGapAt = gap, g.env.since(g.last)
		}
	}
	from := g.env.since(g.last)
	g.mu.Unlock()
	if late {
		g.env.violate("", "", -1, fmt.Sprintf("heartbeat late: none for %v since the one at t=%.2fs (bound %v)", gap.Round(time.Millisecond), from, g.bound))
	}
}

// HeartbeatStats is the report's view of the heartbeat.
type HeartbeatStats struct {
	Count         int     `json:"count"`
	BoundMS       float64 `json:"bound_ms"`
	MaxGapMS      float64 `json:"max_gap_ms"` // host receive times
	MaxGapAtS     float64 `json:"max_gap_at_s"`
	MaxGuestGapMS int64   `json:"max_guest_gap_ms"` // the guest's own timestamps
}

func (g *guestLog) stats() HeartbeatStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return HeartbeatStats{Count: g.count, BoundMS: ms(g.bound), MaxGapMS: ms(g.maxGap), MaxGapAtS: g.maxGapAt, MaxGuestGapMS: g.maxGuestGap}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
