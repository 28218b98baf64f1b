// Package nested runs commands on a KVM that executes guest kernel code
// at full (TCG) speed, on hosts whose own KVM emulates guest kernel mode.
//
// The rig boots Debian's generic kernel (the "outer machine", L1) under
// qemu-system-x86_64 with TCG and an emulated AMD SVM (-cpu max). There
// kvm_amd offers a /dev/kvm whose guests (L2) run their kernel code like
// their user code, so stock distro kernels boot under vmm in seconds.
// L1 shares the host's root read-only and one run folder read-write over
// 9p, and runs a command chrooted at the host's paths, with TMPDIR a
// tmpfs of L1's own at /mnt: a test binary built on the host runs there
// unchanged. See ../shared/NESTED-KVM.md
// for the measured facts, and the README for running it by hand.
//
// Timings inside the rig are TCG time: use them only for ratios of vmm
// and QEMU measured side by side in the same outer machine.
package nested

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvInside is set in every command the rig runs, so a test can tell
// that it is inside the outer machine.
const EnvInside = "VMM_IN_NESTED_RIG"

//go:embed l1init.sh
var l1Init []byte

// l1Modules are the outer kernel's modules, in load order (each after
// what it depends on): virtio for 9p, 9p for the shares, kvm-amd for
// /dev/kvm (it needs ccp, kvm needs irqbypass). Optional ones may be
// built in or absent in other kernel builds.
var l1Modules = []struct {
	name     string
	optional bool
}{
	{"virtio_ring", true}, {"virtio", true}, {"virtio_pci_modern_dev", true},
	{"virtio_pci_legacy_dev", true}, {"virtio_pci", true},
	{"netfs", true}, {"fscache", true}, {"9pnet", false}, {"9pnet_virtio", false}, {"9p", false},
	{"irqbypass", true}, {"kvm", false}, {"ccp", true}, {"kvm-amd", false},
}

// Rig is a prepared outer machine: its kernel and initramfs.
type Rig struct {
	Kernel string // Debian's generic bzImage
	Initrd string // busybox, the modules and l1init.sh
	// RunRoot holds one folder per run, shared read-write with L1.
	RunRoot string
}

// Prepare returns the rig whose files live in buildDir/nested, building
// the initramfs from buildDir/debian (make kernels) and Debian's
// busybox-static package when they are missing or older than their
// inputs. It is idempotent and safe to call from several processes.
func Prepare(buildDir string) (*Rig, error) {
	buildDir, err := filepath.Abs(buildDir)
	if err != nil {
		return nil, err
	}
	deb := filepath.Join(buildDir, "debian")
	dir := filepath.Join(buildDir, "nested")
	r := &Rig{
		Kernel:  filepath.Join(deb, "bzImage"),
		Initrd:  filepath.Join(dir, "l1.cpio"),
		RunRoot: filepath.Join(dir, "runs"),
	}
	if _, err := os.Stat(filepath.Join(deb, "MODULES")); err != nil {
		return nil, fmt.Errorf("outer kernel's modules missing in %s (run `make kernels`): %w", deb, err)
	}
	if err := os.MkdirAll(r.RunRoot, 0o755); err != nil {
		return nil, err
	}
	if fresh(r.Initrd, r.Kernel, filepath.Join(deb, "MODULES")) {
		return r, nil
	}
	busybox, err := fetchBusybox(filepath.Join(dir, "busybox"))
	if err != nil {
		return nil, err
	}
	mods, err := pickModules(filepath.Join(deb, "modules"), filepath.Join(deb, "BUILTIN"))
	if err != nil {
		return nil, err
	}
	if err := writeInitramfs(r.Initrd, busybox, filepath.Join(deb, "modules"), mods); err != nil {
		return nil, fmt.Errorf("outer initramfs %s: %w", r.Initrd, err)
	}
	return r, nil
}

// fresh reports whether out exists, is newer than every input, and was
// built with this init script (kept beside it as out.init: a changed
// script changes the binary that embeds it, not out's time).
func fresh(out string, inputs ...string) bool {
	st, err := os.Stat(out)
	if err != nil {
		return false
	}
	for _, in := range inputs {
		is, err := os.Stat(in)
		if err != nil || is.ModTime().After(st.ModTime()) {
			return false
		}
	}
	sum, err := os.ReadFile(out + ".init")
	return err == nil && string(sum) == string(l1Init)
}

// pickModules lists the l1Modules present in dir, in load order; a
// required module must be there or named in the BUILTIN list.
func pickModules(dir, builtinList string) ([]string, error) {
	builtin, _ := os.ReadFile(builtinList)
	var out []string
	for _, m := range l1Modules {
		if _, err := os.Stat(filepath.Join(dir, m.name+".ko")); err == nil {
			out = append(out, m.name)
			continue
		}
		alt := strings.ReplaceAll(m.name, "-", "_")
		if m.optional || strings.Contains(string(builtin), "/"+m.name+".ko") || strings.Contains(string(builtin), "/"+alt+".ko") {
			continue
		}
		return nil, fmt.Errorf("outer kernel module %s.ko is not in %s (nor built in): run `make kernels`", m.name, dir)
	}
	return out, nil
}

// kvmMissing reports whether the outer machine's console says it has
// no /dev/kvm, which the init prints when kvm_amd did not load.
func kvmMissing(console string) bool {
	sc := bufio.NewScanner(strings.NewReader(console))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "nested-rig: no /dev/kvm") {
			return true
		}
	}
	return false
}

// errNoStatus is returned when the outer machine ended without writing
// the command's status (it crashed, or timed out).
var errNoStatus = errors.New("the outer machine ended without the command's status")

// ErrOuterCrashed is returned when the outer machine's kernel panicked:
// QEMU's TCG emulation of SVM occasionally breaks the outer kernel
// itself (seen: an interrupt taken right after VMRUN, before the host's
// GS base is back, in kvm_amd's __svm_vcpu_run). The command's verdict
// is then unknown, and running it again is fair.
var ErrOuterCrashed = errors.New("the outer machine's kernel panicked")
