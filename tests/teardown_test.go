package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVMReaper: vmm leaves the VM's kernel teardown (KVM's grace
// periods for the irqchip and PIT, 15–25 ms here) to a detached helper
// holding the VM fd, so its own exit does not wait for it. The helper
// is found by a marker in the environment it inherits: it must hold the
// KVM VM fd and end by itself once vmm has gone (a write end of its
// pipe leaked into it would keep it, and the VM, alive forever).
func TestVMReaper(t *testing.T) {
	needKVM(t)
	mark := fmt.Sprintf("VMM_TEST_REAPER_MARK=%d", time.Now().UnixNano())
	cmd := exec.Command(vmmBinary(t), "run", "-kernel", guestELF(t), "-m", "128M", "-append", "exit 0")
	cmd.Env = append(os.Environ(), mark)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("vmm run: %v", err)
	}
	if !strings.Contains(stdout.String(), "guest: hello") {
		t.Fatalf("vmm run stdout = %q; want the guest's hello", stdout.String())
	}
	if pids := procsWithEnv(mark); len(pids) > 0 {
		// Usually still tearing the VM down: it holds the VM.
		for _, pid := range pids {
			if fd3, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", pid)); err == nil && fd3 != "anon_inode:kvm-vm" {
				t.Errorf("reaper %d: fd 3 = %q; want anon_inode:kvm-vm", pid, fd3)
			}
		}
	} else {
		t.Log("the reaper had already ended when vmm's exit was seen")
	}
	waitUntil(t, 10*time.Second, "the VM reaper to end after vmm", func() bool { return len(procsWithEnv(mark)) == 0 })
}

// procsWithEnv lists the processes whose environment holds kv.
func procsWithEnv(kv string) []int {
	var pids []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		env, err := os.ReadFile(d + "/environ")
		if err != nil {
			continue
		}
		for _, e := range bytes.Split(env, []byte{0}) {
			if string(e) == kv {
				var pid int
				fmt.Sscan(filepath.Base(d), &pid)
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
