package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// soakReport is the part of soak's report.json these tests read.
type soakReport struct {
	Ports []struct {
		Name            string  `json:"name"`
		Backend         string  `json:"backend"`
		HostToGuest     bool    `json:"host_to_guest"`
		G2HBytes        int64   `json:"g2h_bytes"`
		H2GBytes        int64   `json:"h2g_bytes"`
		InjectedWrongAt []int64 `json:"injected_wrong_at"`
	} `json:"ports"`
	Intervals []struct {
		Kind string `json:"kind"`
	} `json:"intervals"`
	Reconnects int `json:"reconnects"`
	Heartbeat  struct {
		Count int `json:"count"`
	} `json:"heartbeat"`
	Violations []struct {
		Port   string `json:"port"`
		Offset int64  `json:"offset"`
		What   string `json:"what"`
	} `json:"violations"`
}

// runSoak runs `vmm soak ARGS… --out DIR` and reads its report.
func runSoak(t *testing.T, timeout time.Duration, args ...string) (result, *soakReport, string) {
	t.Helper()
	out := t.TempDir()
	args = append([]string{"soak", "--vmm", vmmBinary(t), "--guest", guestELF(t), "--out", out}, args...)
	r := run(t, timeout, vmmBinary(t), args...)
	data, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatalf("vmm soak wrote no report (status %d): %v\nstdout:\n%s\nstderr:\n%s", r.status, err, r.stdout, lastLines(r.stderr, 30))
	}
	var rep soakReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	return r, &rep, out
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// TestSoakShort: a minute of every chaos kind on 8 ports (6 sockets, a
// pty and a pipe) with every byte checked both ways must pass.
func TestSoakShort(t *testing.T) {
	needKVM(t)
	r, rep, out := runSoak(t, 3*time.Minute, "--ports", "8", "--duration", "60s", "--seed", "1")
	if r.status != 0 {
		t.Fatalf("vmm soak exit status %d; want 0\nstdout:\n%s\nstderr (tail):\n%s", r.status, r.stdout, lastLines(r.stderr, 20))
	}
	for _, f := range []string{"report.json", "summary.txt", "throughput.svg", "events.log", "guest.log", "vmm.stderr"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("report file %s: %v (want it, not empty)", f, err)
		}
	}
	if len(rep.Ports) != 8 {
		t.Fatalf("report has %d ports; want 8", len(rep.Ports))
	}
	for _, p := range rep.Ports {
		if p.G2HBytes == 0 || (p.HostToGuest && p.H2GBytes == 0) {
			t.Errorf("port %s (%s) moved %d bytes guest→host and %d host→guest; want both > 0", p.Name, p.Backend, p.G2HBytes, p.H2GBytes)
		}
	}
	kinds := map[string]bool{}
	for _, iv := range rep.Intervals {
		kinds[iv.Kind] = true
	}
	for _, k := range []string{"slow", "pause", "reconnect", "kill", "noreader", "away"} {
		if !kinds[k] {
			t.Errorf("the schedule played no %s event; want every kind", k)
		}
	}
	if rep.Reconnects == 0 {
		t.Errorf("reconnects = 0; want > 0")
	}
	if rep.Heartbeat.Count < 100 {
		t.Errorf("heartbeats = %d; want about 10 a second", rep.Heartbeat.Count)
	}
	t.Logf("summary:\n%s", r.stdout)
}

// TestSoakCatchesCorruption: the host peer sends one wrong byte on a
// host→guest stream; soak must fail, naming the port and that offset.
func TestSoakCatchesCorruption(t *testing.T) {
	needKVM(t)
	sched := filepath.Join(t.TempDir(), "corrupt.json")
	os.WriteFile(sched, []byte(`{"events": [{"at": "2s", "port": 1, "kind": "corrupt"}]}`), 0o644)
	r, rep, _ := runSoak(t, 2*time.Minute, "--ports", "3", "--duration", "10s", "--schedule", sched)
	if r.status == 0 {
		t.Fatalf("vmm soak exit status 0 with a corrupted stream; want non-zero\nstdout:\n%s", r.stdout)
	}
	inj := rep.Ports[1].InjectedWrongAt
	if len(inj) != 1 {
		t.Fatalf("port p1 injected %v; want one wrong byte", inj)
	}
	want := fmt.Sprintf("port p1 host→guest offset %d", inj[0])
	if !strings.Contains(r.stdout, want) {
		t.Errorf("summary does not name %q:\n%s", want, r.stdout)
	}
	found := false
	for _, v := range rep.Violations {
		found = found || (v.Port == "p1" && v.Offset == inj[0])
	}
	if !found {
		t.Errorf("violations %+v; want one on p1 at offset %d", rep.Violations, inj[0])
	}
}

// TestSoakBadSchedule: a schedule that does not fit the ports is refused
// before anything starts, naming the event.
func TestSoakBadSchedule(t *testing.T) {
	sched := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(sched, []byte(`{"events": [{"at": "2s", "port": 0, "kind": "away", "for": "1s"}]}`), 0o644)
	r := run(t, time.Minute, vmmBinary(t), "soak", "--ports", "3", "--schedule", sched, "--guest", os.Args[0])
	if r.status != 2 || !strings.Contains(r.stderr, "away needs the pty port") {
		t.Errorf("vmm soak with a bad schedule: status %d, stderr %q; want 2 and the reason", r.status, r.stderr)
	}
}
