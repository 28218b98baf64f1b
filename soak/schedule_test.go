package soak

import (
	"strings"
	"testing"
	"time"
)

func layout(t *testing.T, n int) []PortSpec {
	t.Helper()
	ps, err := Layout(n)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestParseSchedule(t *testing.T) {
	ps := layout(t, 8) // p6 pty, p7 pipe
	s, err := ParseSchedule([]byte(`{"seed": 3, "events": [
		{"at": "9s", "port": 6, "kind": "away", "for": "1s"},
		{"at": "1.5s", "port": 0, "kind": "slow", "for": "2s", "rate": 65536},
		{"at": "2s", "port": 1, "kind": "kill", "for": "100ms"},
		{"at": "4s", "port": 0, "kind": "pause", "for": "1s"},
		{"at": "5s", "port": 7, "kind": "noreader", "for": "3s"},
		{"at": "6s", "port": 2, "kind": "reconnect", "for": "500ms"},
		{"at": "7s", "port": 3, "kind": "corrupt"}]}`), ps)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Events[0]; got.Kind != Slow || got.At.D() != 1500*time.Millisecond || got.Rate != 65536 {
		t.Errorf("first event = %+v; want the slow one at 1.5s (sorted)", got)
	}
	if got := s.MaxFor(); got != 3*time.Second {
		t.Errorf("MaxFor() = %v; want 3s", got)
	}
}

func TestParseScheduleErrors(t *testing.T) {
	ps := layout(t, 8)
	for _, tc := range []struct{ json, want string }{
		{`{"events": [{"at": "1s", "port": 0, "kind": "nap", "for": "1s"}]}`, "unknown kind"},
		{`{"events": [{"at": "1s", "port": 8, "kind": "pause", "for": "1s"}]}`, "no such port"},
		{`{"events": [{"at": "1s", "port": 0, "kind": "pause"}]}`, `"for" > 0`},
		{`{"events": [{"at": "1s", "port": 0, "kind": "slow", "for": "1s"}]}`, "rate"},
		{`{"events": [{"at": "1s", "port": 6, "kind": "kill", "for": "1s"}]}`, "needs a socket port"},
		{`{"events": [{"at": "1s", "port": 0, "kind": "noreader", "for": "1s"}]}`, "needs the pipe port"},
		{`{"events": [{"at": "1s", "port": 0, "kind": "away", "for": "1s"}]}`, "needs the pty port"},
		{`{"events": [{"at": "1s", "port": 0, "kind": "pause", "for": "2s"}, {"at": "2s", "port": 0, "kind": "pause", "for": "1s"}]}`, "overlaps"},
		{`{"events": [{"at": 5, "port": 0, "kind": "pause", "for": "1s"}]}`, "duration"},
		{`{"events": [{"at": "-1s", "port": 0, "kind": "pause", "for": "1s"}]}`, "negative"},
	} {
		_, err := ParseSchedule([]byte(tc.json), ps)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSchedule(%s) = %v; want an error containing %q", tc.json, err, tc.want)
		}
	}
}

func TestGenerate(t *testing.T) {
	ps := layout(t, 8)
	a, b := Generate(7, ps, time.Minute), Generate(7, ps, time.Minute)
	if len(a.Events) != len(b.Events) {
		t.Fatalf("Generate(7) twice: %d and %d events; want the same", len(a.Events), len(b.Events))
	}
	seen := map[Kind]bool{}
	for i := range a.Events {
		if a.Events[i] != b.Events[i] {
			t.Errorf("Generate(7) event %d = %+v then %+v; want reproducible", i, a.Events[i], b.Events[i])
		}
		if a.Events[i].End() > time.Minute {
			t.Errorf("event %+v ends after the run", a.Events[i])
		}
		seen[a.Events[i].Kind] = true
	}
	if err := a.Validate(ps); err != nil {
		t.Errorf("generated schedule invalid: %v", err)
	}
	for _, k := range []Kind{Slow, Pause, Reconnect, Kill, NoReader, Away} {
		if !seen[k] {
			t.Errorf("Generate(7, 8 ports, 1m) has no %s event", k)
		}
	}
	if seen[Corrupt] {
		t.Errorf("Generate made a corrupt event; it is for tests only")
	}
	if c := Generate(8, ps, time.Minute); len(c.Events) == len(a.Events) && c.Events[0] == a.Events[0] {
		t.Errorf("Generate(8) starts like Generate(7); want a different schedule per seed")
	}
}

func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		n        int
		backends string
		bothWays int
	}{
		{1, "socket", 1},
		{2, "socket pipe", 2},
		{8, "socket socket socket socket socket socket pty pipe", 8},
		{31, "", 1},
	} {
		ps := layout(t, tc.n)
		var bs []string
		both := 0
		for _, p := range ps {
			bs = append(bs, string(p.Backend))
			if p.HostToGuest {
				both++
			}
		}
		if tc.backends != "" && strings.Join(bs, " ") != tc.backends {
			t.Errorf("Layout(%d) = %v; want %s", tc.n, bs, tc.backends)
		}
		if both != tc.bothWays {
			t.Errorf("Layout(%d): %d ports both ways; want %d", tc.n, both, tc.bothWays)
		}
	}
	if _, err := Layout(32); err == nil {
		t.Errorf("Layout(32) = nil error; want out of range")
	}
}
