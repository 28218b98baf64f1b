package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vmm/tests/nested"
)

// Tests that need guest kernel code to run at full speed (stock distro
// kernels) start with `if !runsHere(t) { return }`. Where this host's
// KVM runs guest kernel mode natively, and inside the nested rig, they
// run in this process. Where it emulates guest kernel mode (our PVM
// hosts), runsHere runs the same test of this same binary in the nested
// rig (package tests/nested; all selected rig tests share one outer
// machine, rig_batch_test.go), makes the rig's verdict this test's, and
// returns false. A test that skipped in the rig fails here: it did not
// run anywhere.

var (
	rigOnce sync.Once
	rig     *nested.Rig
	rigErr  error
)

// runsHere reports whether the calling top-level test runs in this
// process; if not, it has already run in the nested rig.
func runsHere(t *testing.T) bool {
	t.Helper()
	needKVM(t)
	if os.Getenv(nested.EnvInside) != "" {
		t.Log("running in the nested rig's outer machine (TCG time)")
		return true
	}
	emulated, ratio := cpl0Emulated(t)
	if !emulated {
		return true
	}
	t.Logf("this host's KVM emulates guest CPL0 (a CPL0 loop runs %.0f× slower than at CPL3): running %s in the nested rig", ratio, t.Name())
	v := inRig(t)
	t.Logf("in the nested rig:\n%s", v.log)
	switch v.verdict {
	case "SKIP":
		t.Fatalf("%s skipped in the nested rig: it ran nowhere", t.Name())
	case "FAIL":
		t.Fatalf("%s failed in the nested rig", t.Name())
	}
	return false
}

// TestNestedRig checks the rig itself: a command runs in the outer
// machine at the host's paths, with /dev/kvm, a writable TMPDIR and the
// host's read-only root, and its exit status comes back.
func TestNestedRig(t *testing.T) {
	if os.Getenv(nested.EnvInside) != "" {
		t.Skip("already inside the rig")
	}
	if testing.Short() {
		t.Skip("boots the outer machine under TCG (~10 s)")
	}
	r, err := nested.Prepare(filepath.Join(repoRoot(), "build"))
	if err != nil {
		t.Fatalf("nested.Prepare: %v", err)
	}
	var (
		console syncBuffer
		beats   atomic.Int32
	)
	// The command outlasts one heartbeat (every 15 s): L1 must print it,
	// or a command that is silent for minutes would be given up.
	status, err := r.Run(context.Background(), nested.Command{
		Args: []string{"sh", "-c", `test -c /dev/kvm && echo kvm=yes; echo "inside=$` + nested.EnvInside + `"; ` +
			`test -f Makefile && echo checkout=yes; echo data >"$TMPDIR/f" && cat "$TMPDIR/f"; ` +
			`touch Makefile 2>/dev/null || echo root=ro; sleep 17; exit 7`},
		Dir: repoRoot(), Timeout: 5 * time.Minute, Console: &console,
		OnHeartbeat: func() { beats.Add(1) },
	})
	if err != nil {
		t.Fatalf("rig.Run: %v", err)
	}
	if status != 7 {
		t.Errorf("rig.Run status = %d; want 7\n%s", status, console.String())
	}
	checkLines(t, console.String(), []string{"kvm=yes", "inside=1", "checkout=yes", "data", "root=ro"})
	if beats.Load() == 0 {
		t.Errorf("no heartbeat from L1 in a 17 s command\n%s", console.String())
	}
	if strings.Contains(console.String(), "alive") {
		t.Errorf("the heartbeat reached the console:\n%s", console.String())
	}
}
