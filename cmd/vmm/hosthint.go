package main

import (
	"fmt"
	"os"
	"strings"
)

// pvmModule is present on hosts whose KVM emulates guest kernel mode
// (the PVM hypervisor: guest CPL0 runs in KVM's instruction emulator;
// README, Host requirements).
const pvmModule = "/sys/module/kvm_pvm"

func emulatingHost() bool {
	_, err := os.Stat(pvmModule)
	return err == nil
}

// isBzImage: the setup header's "HdrS" magic. Distribution kernels are
// bzImages; the kernels that boot on an emulating host here (the test
// kernel, the test guest) are ELF.
func isBzImage(kernel []byte) bool {
	return len(kernel) > 0x206 && string(kernel[0x202:0x206]) == "HdrS"
}

// warnEmulatingHost is one line, before boot, for a kernel that will not
// get far on a host that emulates guest kernel mode.
func warnEmulatingHost(kernel []byte) {
	if emulatingHost() && isBzImage(kernel) {
		fmt.Fprintln(os.Stderr, "vmm: warning: this host's KVM emulates guest kernel mode (kvm_pvm): a distribution kernel boots very slowly here or stops at an instruction KVM cannot emulate; see README.md, Host requirements (the nested rig runs them)")
	}
}

// explainFatal adds what to do to a VM death by an instruction KVM could
// not emulate, on a host that emulates guest kernel mode.
func explainFatal(err error) error {
	if err == nil || !emulatingHost() || !strings.Contains(err.Error(), "emulation failure") {
		return err
	}
	return fmt.Errorf("%w; this host's KVM emulates guest kernel mode (kvm_pvm) and cannot run that instruction: for Linux try noxsave and the README's -cpu and clearcpuid= settings (README.md, Host requirements)", err)
}
