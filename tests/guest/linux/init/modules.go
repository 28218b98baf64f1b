//go:build linux && amd64

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// modulesDir holds the kernel modules mkinitrd put in the initramfs
// (-modules DIR -module-list a,b,c).
const modulesDir = "/modules"

// parseFlag returns the value of the last key= word of cmdline, and
// whether there is one.
func parseFlag(cmdline, key string) (string, bool) {
	v, ok := "", false
	for _, w := range strings.Fields(cmdline) {
		if s, found := strings.CutPrefix(w, key+"="); found {
			v, ok = s, true
		}
	}
	return v, ok
}

// moduleList returns the names of vmm.modules=a,b,c in load order.
func moduleList(cmdline string) []string {
	v, _ := parseFlag(cmdline, "vmm.modules")
	var names []string
	for _, n := range strings.Split(v, ",") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// flagSet reports whether cmdline holds key=1 (e.g. vmm.poweroff=1).
func flagSet(cmdline, key string) bool {
	v, _ := parseFlag(cmdline, key)
	return v == "1"
}

// loadModules loads /modules/NAME.ko for each name, in order, printing
// "vmm-init: module NAME loaded" for each. A module the kernel already
// has (built in, or loaded) counts as loaded.
func loadModules(names []string) error {
	if len(names) == 0 {
		return nil
	}
	if _, err := os.Stat(modulesDir); err != nil {
		return fmt.Errorf("vmm.modules= given but no %s: %w", modulesDir, err)
	}
	for _, n := range names {
		if err := loadModule(filepath.Join(modulesDir, n+".ko")); err != nil {
			return fmt.Errorf("module %s: %w", n, err)
		}
		logf("module %s loaded", n)
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finit_module %s: %w", path, err)
	}
	return nil
}

// poweroff ends the VM the way a distro's shutdown does: sync, then
// reboot(LINUX_REBOOT_CMD_POWER_OFF), which the kernel carries out through
// ACPI S5 (the FADT's sleep control register); the vmm ends with status 0.
func poweroff() {
	logf("poweroff")
	drainConsole()
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		logf("poweroff: %v", err)
	}
}

// reboot restarts the machine the way the kernel is told to (ACPI
// reset register, keyboard controller, triple fault): under vmm, as
// under QEMU's -no-reboot, that ends the VM with status 0.
func reboot() {
	logf("reboot")
	drainConsole()
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		logf("reboot: %v", err)
	}
}
