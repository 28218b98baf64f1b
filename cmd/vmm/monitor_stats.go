package main

// vmm's per-port metrics, a QMP downstream extension: its name carries
// the __RFQDN_ prefix the QMP spec reserves for them (org.vmm is the
// namespace vmm's test ports use too).

import (
	"strconv"

	"vmm/qmp"
)

const portStatsCommand = "__org.vmm_query-port-stats"

// portStat is one port's metrics, in QAPI's naming style.
type portStat struct {
	Bus             string `json:"bus"` // "ID.0" as device_add's bus=
	Nr              uint32 `json:"nr"`
	ID              string `json:"id,omitempty"` // -device / device_add id
	Name            string `json:"name,omitempty"`
	Chardev         string `json:"chardev"`
	Console         bool   `json:"console"`
	GuestOpen       bool   `json:"guest-open"`
	HostConnected   bool   `json:"host-connected"`
	BytesToGuest    uint64 `json:"bytes-to-guest"`
	BytesFromGuest  uint64 `json:"bytes-from-guest"`
	BytesHeld       uint64 `json:"bytes-held"` // guest data waiting for the host
	Throttled       bool   `json:"throttled"`  // waiting for the host now
	ThrottleCount   uint64 `json:"throttle-count"`
	ThrottledMs     int64  `json:"throttled-ms"` // in total
	DroppedBytes    uint64 `json:"dropped-bytes"`
	ConsoleOverflow uint64 `json:"console-overflow-bytes"`
	Connections     uint64 `json:"connections"` // host peers seen
}

func (mon *monitor) queryPortStats(*qmp.Call, *noArgs) (any, error) {
	out := []portStat{}
	for i, b := range mon.buses {
		bus := b.id + ".0"
		if b.id == "" {
			bus = "virtio-serial" + strconv.Itoa(i) + ".0"
		}
		for _, st := range b.dev.Stats() {
			out = append(out, portStat{Bus: bus, Nr: st.ID, ID: st.DevID, Name: st.Name, Chardev: st.Chardev,
				Console: st.Console, GuestOpen: st.GuestOpen, HostConnected: st.HostConnected,
				BytesToGuest: st.BytesIn, BytesFromGuest: st.BytesOut, BytesHeld: st.BytesHeld,
				Throttled: st.Throttled, ThrottleCount: st.Throttles, ThrottledMs: st.ThrottledTime.Milliseconds(),
				DroppedBytes: st.Dropped, ConsoleOverflow: st.ConsoleOverflow, Connections: st.Connections})
		}
	}
	return out, nil
}
