package guestlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLimiter: a cause repeated a million times within one interval is
// logged once, another cause has its own line, a cause is logged again
// once Interval has passed (with the count so far), and every occurrence
// is counted.
func TestLimiter(t *testing.T) {
	var out bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&out, nil)))
	defer slog.SetDefault(old)

	now := time.Unix(1000, 0)
	l := &Limiter{Now: func() time.Time { return now }}
	for range 1_000_000 {
		l.Error("virtio queue broken", "queue", 0)
	}
	l.Warn("virtio: features refused")
	now = now.Add(Interval - time.Millisecond)
	l.Error("virtio queue broken", "queue", 1)
	now = now.Add(time.Millisecond)
	l.Error("virtio queue broken", "queue", 2)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines; want 3:\n%s", len(lines), &out)
	}
	for i, want := range []string{
		`level=ERROR msg="virtio queue broken" queue=0 occurrences=1`,
		`level=WARN msg="virtio: features refused" occurrences=1`,
		`level=ERROR msg="virtio queue broken" queue=2 occurrences=1000002`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q; want it to hold %q", i, lines[i], want)
		}
	}
	c := l.Counts()
	if c["virtio queue broken"] != 1_000_002 || c["virtio: features refused"] != 1 || len(c) != 2 {
		t.Errorf("Counts() = %v; want 1000002 broken, 1 refused", c)
	}
}
