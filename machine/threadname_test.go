package machine

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func threadComm(t *testing.T, tid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", tid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestNameThread: a vCPU's thread carries its name while it runs, and
// the old name once it goes back to the scheduler.
func TestNameThread(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid := unix.Gettid()
		if tid == unix.Getpid() {
			t.Log("on the main thread, which keeps its name")
			return
		}
		old := threadComm(t, tid)
		restore := nameThread("vcpu7")
		if got := threadComm(t, tid); got != "vcpu7" {
			t.Errorf("named thread's comm = %q; want vcpu7", got)
		}
		restore()
		if got := threadComm(t, tid); got != old {
			t.Errorf("restored thread's comm = %q; want %q", got, old)
		}
	}()
	<-done
}
