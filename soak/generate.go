package soak

import (
	"math/rand/v2"
	"time"
)

// Generate makes a reproducible schedule from a seed: after a calm
// warm-up, chaos phases (one to three ports disturbed at once) alternate
// with calm phases, so the fairness check has windows of both sorts.
// The first phases play every kind the layout allows, so even a short
// run exercises them all; corrupt is never generated.
func Generate(seed int64, ports []PortSpec, duration time.Duration) *Schedule {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	s := &Schedule{Seed: seed}
	var sockets []int
	pty, pipe := -1, -1
	for _, p := range ports {
		switch p.Backend {
		case Socket:
			sockets = append(sockets, p.Index)
		case Pty:
			pty = p.Index
		case Pipe:
			pipe = p.Index
		}
	}
	// Kinds still owed, each with the ports it can act on.
	type owed struct {
		kind  Kind
		ports []int
	}
	all := make([]int, len(ports))
	for i := range all {
		all[i] = i
	}
	var todo []owed
	todo = append(todo, owed{Slow, all}, owed{Pause, all})
	if len(sockets) > 0 {
		todo = append(todo, owed{Reconnect, sockets}, owed{Kill, sockets})
	}
	if pipe >= 0 {
		todo = append(todo, owed{NoReader, []int{pipe}})
	}
	if pty >= 0 {
		todo = append(todo, owed{Away, []int{pty}})
	}
	random := func() owed {
		for {
			o := todo[rng.IntN(len(todo))]
			if len(o.ports) > 0 {
				return o
			}
		}
	}
	required := append([]owed(nil), todo...)
	const warmup, tail = 5 * time.Second, 3 * time.Second
	at := warmup
	for at+2*time.Second < duration-tail {
		phase := time.Duration(3+rng.IntN(4)) * time.Second
		phase = min(phase, duration-tail-at)
		busy := map[int]bool{}
		n := 1 + rng.IntN(3)
		for k := 0; k < n; k++ {
			var o owed
			if len(required) > 0 {
				o, required = required[0], required[1:]
			} else {
				o = random()
			}
			free := []int{}
			for _, p := range o.ports {
				if !busy[p] {
					free = append(free, p)
				}
			}
			if len(free) == 0 {
				continue
			}
			p := free[rng.IntN(len(free))]
			busy[p] = true
			e := Event{At: Duration(at + jitter(rng, time.Second)), Port: p, Kind: o.kind}
			e.For = Duration(eventLength(rng, o.kind))
			if left := at + phase - e.At.D(); e.For.D() > left {
				e.For = Duration(max(left, 100*time.Millisecond))
			}
			if o.kind == Slow {
				e.Rate = int64(64<<10) << rng.IntN(5) // 64 KiB/s .. 1 MiB/s
			}
			s.Events = append(s.Events, e)
		}
		at += phase + time.Duration(3+rng.IntN(3))*time.Second // then calm
	}
	s.Validate(ports) // sorts; a generated schedule is valid by construction
	return s
}

func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	return time.Duration(rng.Int64N(int64(d))).Round(10 * time.Millisecond)
}

// eventLength is how long each kind lasts: pauses and absent readers
// for seconds (long enough to fill every buffer on the way), departures
// for a moment (the point is the hand-over, not the absence).
func eventLength(rng *rand.Rand, k Kind) time.Duration {
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo)) * time.Millisecond }
	switch k {
	case Slow:
		return ms(2000, 5000)
	case Pause:
		return ms(1000, 4000)
	case Reconnect:
		return ms(100, 1500)
	case Kill:
		return ms(50, 800)
	case NoReader:
		return ms(2000, 5000)
	case Away:
		return ms(300, 2500)
	}
	return 0
}
