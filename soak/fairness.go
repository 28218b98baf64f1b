package soak

import "fmt"

// Interval is a stretch of time during which chaos acted on a port.
type Interval struct {
	Port  int     `json:"port"`
	Kind  Kind    `json:"kind"`
	Start float64 `json:"start_s"`
	End   float64 `json:"end_s"`
}

// Fairness is the rule for "a blocked port never slows an unblocked
// one": time is cut into one-second windows; a port is blocked in a
// window that overlaps one of its chaos intervals (stretched by Grace,
// while its buffers refill). For each port and direction, "calm" windows
// are those where no port is blocked, "contended" ones those where this
// port is not blocked but another is. The mean throughput in contended
// windows must be at least the calm mean divided by Ratio. A port with
// fewer than MinWindows of either kind is not judged.
type Fairness struct {
	Ratio      float64 `json:"ratio"`
	GraceS     float64 `json:"grace_s"`
	WarmupS    float64 `json:"warmup_s"`
	MinWindows int     `json:"min_windows"`
}

// FairResult is one port and direction.
type FairResult struct {
	Port             string  `json:"port"`
	Dir              string  `json:"dir"`
	CalmWindows      int     `json:"calm_windows"`
	ContendedWindows int     `json:"contended_windows"`
	CalmMiBps        float64 `json:"calm_mibps"`
	ContendedMiBps   float64 `json:"contended_mibps"`
	Slowdown         float64 `json:"slowdown"` // calm / contended; must stay ≤ Ratio
	Judged           bool    `json:"judged"`
}

// judge applies f to per-window byte counts: win[port][i] is what the
// port moved in [i, i+1) seconds in one direction.
func (f Fairness) judge(ports []PortSpec, dir string, win [][]int64, iv []Interval) ([]FairResult, []Violation) {
	n := 0
	for _, w := range win {
		n = max(n, len(w))
	}
	blocked := make([][]bool, len(ports))
	for p := range blocked {
		blocked[p] = make([]bool, n)
	}
	for _, v := range iv {
		for i := 0; i < n; i++ {
			if v.Start < float64(i+1) && v.End+f.GraceS > float64(i) {
				blocked[v.Port][i] = true
			}
		}
	}
	anyBlocked := func(i, except int) bool {
		for p := range ports {
			if p != except && blocked[p][i] {
				return true
			}
		}
		return false
	}
	var res []FairResult
	var vs []Violation
	for p, spec := range ports {
		if p >= len(win) {
			continue
		}
		r := FairResult{Port: spec.Name, Dir: dir}
		var calm, cont int64
		firstCont := -1
		for i, b := range win[p] {
			if float64(i) < f.WarmupS || blocked[p][i] {
				continue
			}
			if anyBlocked(i, p) {
				r.ContendedWindows++
				cont += b
				if firstCont < 0 {
					firstCont = i
				}
			} else {
				r.CalmWindows++
				calm += b
			}
		}
		if r.CalmWindows > 0 {
			r.CalmMiBps = float64(calm) / float64(r.CalmWindows) / (1 << 20)
		}
		if r.ContendedWindows > 0 {
			r.ContendedMiBps = float64(cont) / float64(r.ContendedWindows) / (1 << 20)
		}
		r.Judged = r.CalmWindows >= f.MinWindows && r.ContendedWindows >= f.MinWindows && r.CalmMiBps > 0
		if r.Judged {
			if r.ContendedMiBps > 0 {
				r.Slowdown = r.CalmMiBps / r.ContendedMiBps
			}
			if r.ContendedMiBps < r.CalmMiBps/f.Ratio {
				vs = append(vs, Violation{T: float64(firstCont), Port: spec.Name, Dir: dir, Offset: -1,
					What: fmt.Sprintf("unfair: %.2f MiB/s while other ports were blocked vs %.2f MiB/s while none was (%d and %d windows; slowdown %.1f > ratio %.1f)",
						r.ContendedMiBps, r.CalmMiBps, r.ContendedWindows, r.CalmWindows, r.Slowdown, f.Ratio)})
			}
		}
		res = append(res, r)
	}
	return res, vs
}
