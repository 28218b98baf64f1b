package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadInput: every bad input exits non-zero with one line on stderr
// naming the problem, nothing on stdout, and no panic.
func TestBadInput(t *testing.T) {
	guest := guestELF(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.bin")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a kernel ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	bigInitrd := filepath.Join(dir, "big.cpio")
	if err := os.WriteFile(bigInitrd, make([]byte, 40<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
		kvm  bool // the check happens after /dev/kvm is opened
	}{
		{"missing kernel file", []string{"-kernel", filepath.Join(dir, "nope")}, "-kernel: open " + dir + "/nope: no such file or directory", false},
		{"unreadable kernel (a directory)", []string{"-kernel", dir}, "-kernel: read " + dir + ": is a directory", false},
		{"missing initrd", []string{"-kernel", guest, "-initrd", filepath.Join(dir, "none")}, "-initrd: open " + dir + "/none: no such file or directory", false},
		{"not a kernel", []string{"-kernel", junk}, "not a bzImage or a PVH ELF", true},
		{"memory too small for initrd", []string{"-kernel", guest, "-initrd", bigInitrd, "-m", "32M"}, "initrd", true},
		{"smp 0", []string{"-kernel", guest, "-smp", "0"}, "-smp 0: at least one vCPU is needed", false},
		{"smp not a number", []string{"-kernel", guest, "-smp", "two"}, "-smp two: not a number of vCPUs", false},
		{"smp beyond KVM", []string{"-kernel", guest, "-smp", "100000"}, "-smp 100000: more vCPUs than KVM allows", true},
		{"unparsable size", []string{"-kernel", guest, "-m", "12Q"}, `-m 12Q: cannot parse size "12Q"`, false},
		{"negative size", []string{"-kernel", guest, "-m", "-5"}, `-m -5: cannot parse size "-5"`, false},
		{"tiny memory", []string{"-kernel", guest, "-m", "1M"}, "-m 1M: guest memory must be at least 16 MiB", false},
		{"unknown option", []string{"-kernel", guest, "-frobnicate", "1"}, `unknown option "-frobnicate"`, false},
		{"option without value", []string{"-kernel"}, "option -kernel needs a value", false},
		{"no kernel", []string{"-m", "64M"}, "no kernel: -kernel FILE is required", false},
		{"stray argument", []string{"-kernel", guest, "extra"}, `unexpected argument "extra"`, false},
		{"unknown cpu feature", []string{"-kernel", guest, "-cpu", "host,+warp-drive"}, `-cpu: unknown CPU feature "warp-drive"`, false},
		{"unknown cpu model", []string{"-kernel", guest, "-cpu", "pentium"}, `unsupported CPU model "pentium"`, false},
		{"unknown serial backend", []string{"-kernel", guest, "-serial", "telepathy"}, "-serial telepathy: unknown backend", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kvm {
				needKVM(t)
			}
			r := run(t, 30*time.Second, vmmBinary(t), append([]string{"run"}, tt.args...)...)
			if r.status == 0 {
				t.Errorf("vmm run %q exited 0; want non-zero", tt.args)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "vmm: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("vmm run %q stderr = %q; want one line \"vmm: …%s…\"", tt.args, r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("vmm run %q stdout = %q; want nothing (only the guest writes there)", tt.args, r.stdout)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	r := run(t, 10*time.Second, vmmBinary(t))
	if r.status != 2 || !strings.Contains(r.stderr, "usage: vmm run -kernel FILE") {
		t.Errorf("vmm with no arguments: status %d stderr %q; want 2 and the usage", r.status, r.stderr)
	}
	r = run(t, 10*time.Second, vmmBinary(t), "frob")
	if r.status != 2 || !strings.Contains(r.stderr, `unknown command "frob"`) {
		t.Errorf("vmm frob: status %d stderr %q; want 2 and an unknown-command line", r.status, r.stderr)
	}
}
