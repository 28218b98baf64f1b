package soak

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Report is every figure of a run; report.json is this, encoded.
type Report struct {
	Ports          []PortReport   `json:"ports"`
	DurationS      float64        `json:"duration_s"`
	Schedule       *Schedule      `json:"schedule"`
	Intervals      []Interval     `json:"intervals"`
	Heartbeat      HeartbeatStats `json:"heartbeat"`
	Proc           []ProcSample   `json:"proc_samples"`
	Flatness       Flatness       `json:"flatness_rule"`
	Flat           FlatResult     `json:"flatness"`
	FairnessRule   Fairness       `json:"fairness_rule"`
	Fairness       []FairResult   `json:"fairness"`
	VMMExitStatus  int            `json:"vmm_exit_status"`
	Violations     []Violation    `json:"violations"`
	TotalG2HMiB    float64        `json:"total_g2h_mib"`
	TotalH2GMiB    float64        `json:"total_h2g_mib"`
	Reconnects     int            `json:"reconnects"`
	ThrottleEvents int            `json:"throttle_events"`
}

// PortReport is one port's figures.
type PortReport struct {
	PortSpec
	G2HBytes      int64    `json:"g2h_bytes"` // read and checked by the host
	H2GBytes      int64    `json:"h2g_bytes"` // written by the host
	G2HMiBps      float64  `json:"g2h_mibps"`
	H2GMiBps      float64  `json:"h2g_mibps"`
	G2HOffset     int64    `json:"g2h_offset"` // includes bytes departing peers left unread
	Discarded     int64    `json:"discarded_unread"`
	Connections   int      `json:"connections"`
	Reconnects    int      `json:"reconnects"` // polite departures
	Kills         int      `json:"kills"`
	Pauses        int      `json:"pauses"`
	Slows         int      `json:"slows"`
	NoReader      int      `json:"noreader"`
	Away          int      `json:"away"`
	InjectedWrong []int64  `json:"injected_wrong_at,omitempty"`
	Series        []Sample `json:"series"`

	VMM *VMMPortStats `json:"vmm,omitempty"` // vmm's metrics over QMP, last sample
}

func buildReport(cfg Config, ports []PortSpec, sched *Schedule, e *env, peers []*peer, mon *monitor, g *guestLog, sc *scheduler, elapsed float64, status int) *Report {
	r := &Report{DurationS: elapsed, Schedule: sched, Intervals: sc.snapshot(), Heartbeat: g.stats(),
		Flatness: cfg.Flatness, FairnessRule: cfg.Fairness, VMMExitStatus: status}
	mon.mu.Lock()
	series, proc, vmmStats := mon.series, mon.proc, mon.vmm
	mon.mu.Unlock()
	r.Proc = proc
	var g2h, h2g [][]int64
	for i, p := range peers {
		p.mu.Lock()
		pr := PortReport{PortSpec: p.spec, G2HBytes: p.read.Load(), H2GBytes: p.written.Load(),
			G2HOffset: p.rx.Offset, Discarded: p.discarded.Load(), Connections: p.conns,
			Reconnects: p.counts[Reconnect], Kills: p.counts[Kill], Pauses: p.counts[Pause], Slows: p.counts[Slow],
			NoReader: p.counts[NoReader], Away: p.counts[Away], InjectedWrong: p.injected}
		p.mu.Unlock()
		if i < len(series) {
			pr.Series = series[i]
		}
		if st, ok := vmmStats[p.spec.Name]; ok {
			pr.VMM = &st
			// Every port holds for an absent peer (disconnected=hold):
			// while the VM ran, vmm must not have dropped guest data.
			if st.DroppedBytes > 0 {
				e.violate(p.spec.Name, "guest→host", -1, fmt.Sprintf("vmm dropped %d bytes of the guest's data", st.DroppedBytes))
			}
		}
		if elapsed > 0 {
			pr.G2HMiBps, pr.H2GMiBps = mib(pr.G2HBytes)/elapsed, mib(pr.H2GBytes)/elapsed
		}
		r.TotalG2HMiB += mib(pr.G2HBytes)
		r.TotalH2GMiB += mib(pr.H2GBytes)
		r.Reconnects += pr.Reconnects + pr.Kills + pr.Away
		r.ThrottleEvents += pr.Slows + pr.Pauses + pr.NoReader
		r.Ports = append(r.Ports, pr)
		g2h = append(g2h, windows(pr.Series, true))
		if p.spec.HostToGuest {
			h2g = append(h2g, windows(pr.Series, false))
		} else {
			h2g = append(h2g, nil)
		}
	}
	var vs []Violation
	r.Flat, vs = cfg.Flatness.judge(proc)
	for _, v := range vs {
		e.violate("", "", -1, v.What+fmt.Sprintf(" (sample at t=%.0fs)", v.T))
	}
	for _, dir := range []struct {
		name string
		win  [][]int64
	}{{"guest→host", g2h}, {"host→guest", h2g}} {
		res, vs := cfg.Fairness.judge(ports, dir.name, dir.win, r.Intervals)
		for _, x := range res {
			if x.CalmWindows+x.ContendedWindows > 0 {
				r.Fairness = append(r.Fairness, x)
			}
		}
		for _, v := range vs {
			e.violate(v.Port, v.Dir, -1, v.What)
		}
	}
	e.mu.Lock()
	r.Violations = append([]Violation{}, e.violations...)
	e.mu.Unlock()
	return r
}

// write puts report.json, summary.txt and throughput.svg in dir.
func (r *Report) write(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), js, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(r.Summary()), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "throughput.svg"))
	if err != nil {
		return err
	}
	if err := r.SVG(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Summary is the human version.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vmm soak: %.0fs, %d ports, %d chaos events; %.1f MiB guest→host, %.1f MiB host→guest, every byte checked\n",
		r.DurationS, len(r.Ports), len(r.Schedule.Events), r.TotalG2HMiB, r.TotalH2GMiB)
	fmt.Fprintf(&b, "%-4s %-6s %10s %10s %8s %8s %5s %5s %5s %5s %5s %5s %9s\n",
		"port", "kind", "g→h MiB", "h→g MiB", "g→h/s", "h→g/s", "conn", "recon", "kill", "pause", "slow", "away", "unread")
	for _, p := range r.Ports {
		away := p.Away + p.NoReader
		fmt.Fprintf(&b, "%-4s %-6s %10.1f %10.1f %8.2f %8.2f %5d %5d %5d %5d %5d %5d %9d\n",
			p.Name, p.Backend, mib(p.G2HBytes), mib(p.H2GBytes), p.G2HMiBps, p.H2GMiBps,
			p.Connections, p.Reconnects, p.Kills, p.Pauses, p.Slows, away, p.Discarded)
	}
	h := r.Heartbeat
	fmt.Fprintf(&b, "heartbeat: %d lines, max gap %.0f ms at t=%.1fs (guest clock %d ms), bound %.0f ms\n",
		h.Count, h.MaxGapMS, h.MaxGapAtS, h.MaxGuestGapMS, h.BoundMS)
	f := r.Flat
	if f.Judged {
		fmt.Fprintf(&b, "vmm process: RSS %.1f → max %.1f MiB (+%d KiB, slack %d KiB); fds %d → max %d (+%d, slack %d)\n",
			float64(f.BaseRSSKiB)/1024, float64(f.MaxRSSKiB)/1024, f.RSSGrowthKiB, r.Flatness.RSSSlackKiB,
			f.BaseFDs, f.MaxFDs, f.FDGrowth, r.Flatness.FDSlack)
	} else {
		fmt.Fprintf(&b, "vmm process: too few samples after warm-up to judge RSS and fds\n")
	}
	worst, judged := 0.0, 0
	var worstAt string
	for _, x := range r.Fairness {
		if x.Judged {
			judged++
			if x.Slowdown > worst || x.ContendedMiBps == 0 {
				worst, worstAt = x.Slowdown, x.Port+" "+x.Dir
			}
		}
	}
	fmt.Fprintf(&b, "fairness: %d port-directions judged; worst slowdown %.2f (%s), ratio %.1f\n", judged, worst, worstAt, r.FairnessRule.Ratio)
	if len(r.Violations) == 0 {
		fmt.Fprintf(&b, "PASS: no violations\n")
	} else {
		fmt.Fprintf(&b, "FAIL: %d violations\n", len(r.Violations))
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "  %s\n", v)
		}
	}
	return b.String()
}
