package soak

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// vmm's own view of each port, read over QMP with the
// __org.vmm_query-port-stats extension: what was held, throttled and
// dropped inside vmm, where the soak otherwise only sees its schedule.

// VMMPortStats is one port's metrics as vmm reports them.
type VMMPortStats struct {
	Name           string `json:"name"`
	GuestOpen      bool   `json:"guest-open"`
	HostConnected  bool   `json:"host-connected"`
	BytesToGuest   uint64 `json:"bytes-to-guest"`
	BytesFromGuest uint64 `json:"bytes-from-guest"`
	BytesHeld      uint64 `json:"bytes-held"`
	Throttled      bool   `json:"throttled"`
	ThrottleCount  uint64 `json:"throttle-count"`
	ThrottledMs    int64  `json:"throttled-ms"`
	DroppedBytes   uint64 `json:"dropped-bytes"`
	// ConsoleOverflow: console output dropped because the host was slow.
	ConsoleOverflow uint64 `json:"console-overflow-bytes"`
	Connections     uint64 `json:"connections"`
}

// qmpConn is a minimal QMP client (vmm has no third-party run-time code).
type qmpConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialQMP connects and negotiates capabilities.
func dialQMP(path string) (*qmpConn, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, err
	}
	q := &qmpConn{c: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := q.r.ReadBytes('\n'); err != nil { // the greeting
		c.Close()
		return nil, fmt.Errorf("QMP greeting: %w", err)
	}
	if err := q.call("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

// call runs a command and decodes its return into ret (if not nil);
// events on the way are skipped.
func (q *qmpConn) call(cmd string, ret any) error {
	q.c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(q.c, `{"execute":%q}`, cmd); err != nil {
		return err
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		var m struct {
			Event  string
			Return json.RawMessage
			Error  *struct{ Class, Desc string }
		}
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		switch {
		case m.Event != "":
			continue
		case m.Error != nil:
			return fmt.Errorf("QMP %s: %s: %s", cmd, m.Error.Class, m.Error.Desc)
		case ret != nil:
			return json.Unmarshal(m.Return, ret)
		}
		return nil
	}
}

// portStats returns vmm's metrics by port name.
func (q *qmpConn) portStats() (map[string]VMMPortStats, error) {
	var list []VMMPortStats
	if err := q.call("__org.vmm_query-port-stats", &list); err != nil {
		return nil, err
	}
	out := map[string]VMMPortStats{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out, nil
}

func (q *qmpConn) close() { q.c.Close() }
