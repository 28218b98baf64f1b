package soak

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"
)

// A Schedule is the chaos the host side plays on the ports: a list of
// events, each acting on one port at a time offset from the start of
// streaming (the guest's first heartbeat). See README.md for the format.
type Schedule struct {
	Seed   int64   `json:"seed,omitempty"`
	Events []Event `json:"events"`
}

// Event is one chaos action on one port.
type Event struct {
	At   Duration `json:"at"`
	Port int      `json:"port"`
	Kind Kind     `json:"kind"`
	For  Duration `json:"for,omitempty"`
	// Rate is the slow reader's bound in bytes per second.
	Rate int64 `json:"rate,omitempty"`
}

// Kind names a chaos action.
type Kind string

const (
	Slow      Kind = "slow"      // reader bounded to Rate bytes/s for For
	Pause     Kind = "pause"     // reader reads nothing for For
	Reconnect Kind = "reconnect" // polite leave (SHUT_RD, count unread, close), back after For
	Kill      Kind = "kill"      // abrupt leave (SHUT_RDWR mid-write, count unread, close), back after For
	NoReader  Kind = "noreader"  // pipe port: the FIFO's reader is closed for For
	Away      Kind = "away"      // pty port: the slave is closed for For
	Corrupt   Kind = "corrupt"   // testing only: the writer sends one wrong byte
)

var kinds = map[Kind]bool{Slow: true, Pause: true, Reconnect: true, Kill: true, NoReader: true, Away: true, Corrupt: true}

// End is when the event stops acting on its port.
func (e Event) End() time.Duration { return e.At.D() + e.For.D() }

// Duration is a time.Duration that reads and writes as "1.5s" in JSON.
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"1.5s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseSchedule reads a schedule and checks it against the port layout.
func ParseSchedule(data []byte, ports []PortSpec) (*Schedule, error) {
	var s Schedule
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	if err := s.Validate(ports); err != nil {
		return nil, err
	}
	return &s, nil
}

// LoadSchedule reads a schedule file.
func LoadSchedule(path string, ports []PortSpec) (*Schedule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseSchedule(data, ports)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Validate checks every event fits its port and that a port has one
// event at a time (so each interval in the report has one cause), and
// sorts the events by time.
func (s *Schedule) Validate(ports []PortSpec) error {
	sort.SliceStable(s.Events, func(i, j int) bool { return s.Events[i].At < s.Events[j].At })
	last := map[int]Event{}
	for i, e := range s.Events {
		where := fmt.Sprintf("schedule event %d (%s on port %d at %v)", i, e.Kind, e.Port, e.At.D())
		if !kinds[e.Kind] {
			return fmt.Errorf("%s: unknown kind (want slow, pause, reconnect, kill, noreader, away or corrupt)", where)
		}
		if e.Port < 0 || e.Port >= len(ports) {
			return fmt.Errorf("%s: no such port (0..%d)", where, len(ports)-1)
		}
		if e.At < 0 || e.For < 0 {
			return fmt.Errorf("%s: negative time", where)
		}
		if e.Kind != Corrupt && e.For <= 0 {
			return fmt.Errorf("%s: want \"for\" > 0", where)
		}
		if e.Kind == Slow && e.Rate <= 0 {
			return fmt.Errorf("%s: want \"rate\" > 0 bytes/s", where)
		}
		p := ports[e.Port]
		switch {
		case (e.Kind == Reconnect || e.Kind == Kill) && p.Backend != Socket:
			return fmt.Errorf("%s: %s needs a socket port; port %d is %s", where, e.Kind, e.Port, p.Backend)
		case e.Kind == NoReader && p.Backend != Pipe:
			return fmt.Errorf("%s: noreader needs the pipe port; port %d is %s", where, e.Port, p.Backend)
		case e.Kind == Away && p.Backend != Pty:
			return fmt.Errorf("%s: away needs the pty port; port %d is %s", where, e.Port, p.Backend)
		case e.Kind == Corrupt && !p.HostToGuest:
			return fmt.Errorf("%s: port %d carries no host→guest stream to corrupt", where, e.Port)
		}
		if prev, ok := last[e.Port]; ok && e.At.D() < prev.End() {
			return fmt.Errorf("%s: overlaps the %s at %v on the same port", where, prev.Kind, prev.At.D())
		}
		last[e.Port] = e
	}
	return nil
}

// MaxFor is the longest event, which bounds how long a guest job may
// see no progress.
func (s *Schedule) MaxFor() time.Duration {
	var m time.Duration
	for _, e := range s.Events {
		m = max(m, e.For.D())
	}
	return m
}
