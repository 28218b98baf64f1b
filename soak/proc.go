package soak

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcSample is one look at the vmm process.
type ProcSample struct {
	T      float64 `json:"t_s"`
	RSSKiB int64   `json:"rss_kib"`
	FDs    int     `json:"fds"`
}

// sampleProc reads VmRSS from /proc/PID/status and counts /proc/PID/fd.
func sampleProc(pid int) (rssKiB int64, fds int, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			rssKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, 0, err
	}
	return rssKiB, len(ents), nil
}

// Flatness is how "flat" is judged: after Warmup, the baseline is the
// largest sample in the next Baseline seconds; every later sample must
// stay within RSSSlackKiB and FDSlack of it. Growth, not level, is the
// point: a leak per reconnect or per second shows as a steady climb.
type Flatness struct {
	WarmupS     float64 `json:"warmup_s"`
	BaselineS   float64 `json:"baseline_s"`
	RSSSlackKiB int64   `json:"rss_slack_kib"`
	FDSlack     int     `json:"fd_slack"`
}

// FlatResult is what the samples showed.
type FlatResult struct {
	BaseRSSKiB   int64 `json:"base_rss_kib"`
	MaxRSSKiB    int64 `json:"max_rss_kib"`
	RSSGrowthKiB int64 `json:"rss_growth_kib"`
	BaseFDs      int   `json:"base_fds"`
	MaxFDs       int   `json:"max_fds"`
	FDGrowth     int   `json:"fd_growth"`
	Judged       bool  `json:"judged"` // enough samples after the baseline
}

// judge applies f to samples and returns the result and one violation
// per resource, at the first sample over the line.
func (f Flatness) judge(samples []ProcSample) (FlatResult, []Violation) {
	var r FlatResult
	var after []ProcSample
	for _, s := range samples {
		switch {
		case s.T < f.WarmupS:
		case s.T < f.WarmupS+f.BaselineS:
			r.BaseRSSKiB = max(r.BaseRSSKiB, s.RSSKiB)
			r.BaseFDs = max(r.BaseFDs, s.FDs)
		default:
			after = append(after, s)
		}
	}
	if r.BaseRSSKiB == 0 || len(after) == 0 {
		return r, nil
	}
	r.Judged = true
	r.MaxRSSKiB, r.MaxFDs = r.BaseRSSKiB, r.BaseFDs
	var vs []Violation
	rssBad, fdBad := false, false
	for _, s := range after {
		r.MaxRSSKiB = max(r.MaxRSSKiB, s.RSSKiB)
		r.MaxFDs = max(r.MaxFDs, s.FDs)
		if !rssBad && s.RSSKiB > r.BaseRSSKiB+f.RSSSlackKiB {
			rssBad = true
			vs = append(vs, Violation{T: s.T, Offset: -1, What: fmt.Sprintf("vmm RSS %d KiB, %d KiB above its baseline %d KiB (slack %d KiB)",
				s.RSSKiB, s.RSSKiB-r.BaseRSSKiB, r.BaseRSSKiB, f.RSSSlackKiB)})
		}
		if !fdBad && s.FDs > r.BaseFDs+f.FDSlack {
			fdBad = true
			vs = append(vs, Violation{T: s.T, Offset: -1, What: fmt.Sprintf("vmm has %d fds, %d above its baseline %d (slack %d)",
				s.FDs, s.FDs-r.BaseFDs, r.BaseFDs, f.FDSlack)})
		}
	}
	r.RSSGrowthKiB = r.MaxRSSKiB - r.BaseRSSKiB
	r.FDGrowth = r.MaxFDs - r.BaseFDs
	return r, vs
}
