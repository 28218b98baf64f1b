package tests

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVersionFromMake builds vmm with the Makefile's vmm target (into a
// temporary folder, VMM=…) and checks that `vmm version` names the
// checkout's commit: GOFLAGS=-buildvcs=false on our hosts leaves no
// version control stamp, so the Makefile passes `git describe` to the
// linker.
func TestVersionFromMake(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skipf("no git: %v", err)
	}
	root := repoRoot()
	head := run(t, 10*time.Second, "git", "-C", root, "rev-parse", "--short", "HEAD")
	if head.status != 0 {
		t.Skipf("not a git checkout: %s", head.stderr)
	}
	commit := strings.TrimSpace(head.stdout)
	bin := filepath.Join(t.TempDir(), "vmm")
	r := run(t, 5*time.Minute, "make", "-s", "-C", root, "vmm", "VMM="+bin)
	if r.status != 0 {
		t.Fatalf("make vmm VMM=%s: status %d\n%s%s", bin, r.status, r.stdout, r.stderr)
	}
	v := run(t, 10*time.Second, bin, "version")
	if v.status != 0 || !strings.HasPrefix(v.stdout, "vmm "+commit) || strings.Contains(v.stdout, "development build") ||
		strings.Count(v.stdout, "\n") != 1 {
		t.Errorf("vmm version (built by make vmm) = status %d, %q; want 0 and one line starting %q", v.status, v.stdout, "vmm "+commit)
	}
}
