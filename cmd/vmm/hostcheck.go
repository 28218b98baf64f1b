package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	vmmboot "vmm/boot"
	"vmm/kvm"
)

// checkHost refuses, before anything is built, what this host cannot
// give: more memory than it has, more vCPUs than KVM allows. These are
// the user's options to change, so they are option errors.
func checkHost(o *options) error {
	if total, err := hostMemory(); err == nil && o.memSize > total {
		return badOption(fmt.Errorf("-m %s: more than this host's memory (%s in all): give less, e.g. -m %s",
			sizeString(o.memSize), sizeString(total), suggestMem(total)))
	}
	sys, err := kvm.Open()
	if err != nil {
		return err // named by the kvm package; machine.New would fail the same way
	}
	defer sys.Close()
	if max, err := sys.MaxVCPUs(); err == nil && o.cpus > min(max, 254) {
		return badOption(fmt.Errorf("-smp %d: more vCPUs than KVM allows (%d)", o.cpus, min(max, 254)))
	}
	return nil
}

// hostMemory is MemTotal from /proc/meminfo, in bytes.
func hostMemory() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kib, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib << 10, err
		}
	}
	return 0, errors.New("no MemTotal in /proc/meminfo")
}

// suggestMem is a -m that leaves the host half its memory.
func suggestMem(total uint64) string {
	half := total / 2 >> 30
	if half == 0 {
		return "256M"
	}
	return fmt.Sprintf("%dG", half)
}

// sizeString writes a byte count the way -m takes it (1G, 512M, 1.5G).
func sizeString(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	}
	return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
}

// explainFit rewrites the loader's "does not fit" errors, which name
// guest addresses, as what the user can change: -m.
func explainFit(err error, o *options, kernel, initrd int) error {
	if !errors.Is(err, vmmboot.ErrInitrdTooLarge) && !errors.Is(err, vmmboot.ErrMemoryTooSmall) {
		return err
	}
	// Below the 3 GiB hole the initrd's ceiling is the end of RAM, so
	// more RAM helps; above it the kernel's own limit is in the way.
	if o.memSize >= 3<<30 {
		return err
	}
	need := o.memSize + uint64(kernel) + uint64(initrd)
	suggest := uint64(64 << 20)
	for suggest < 2*need {
		suggest *= 2
	}
	what := "the kernel does"
	if errors.Is(err, vmmboot.ErrInitrdTooLarge) {
		what = fmt.Sprintf("the kernel and the initrd (%s) do", sizeString(uint64(initrd)))
	}
	return badOption(fmt.Errorf("-m %s: %s not fit in guest memory: give more, e.g. -m %s", sizeString(o.memSize), what, sizeString(suggest)))
}
