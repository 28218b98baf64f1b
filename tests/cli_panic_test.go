package tests

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGuestPanic: the guest reports a panic through the pvpanic port
// (0x505, where it reads the supported events 3 first, as Linux's driver
// does); -action panic= decides: exit-failure (the default) ends vmm
// with 1, shutdown with 0, none lets the guest go on to its own exit,
// pause holds it; each says so in one line on stderr.
func TestGuestPanic(t *testing.T) {
	needKVM(t)
	guest := guestELF(t)
	for _, tc := range []struct {
		action string
		status int
		line   string
		runsOn bool
	}{
		{"", 1, "vmm: the guest panicked (pvpanic); exit status 1 (-action panic=exit-failure)", false},
		{"panic=exit-failure", 1, "vmm: the guest panicked (pvpanic); exit status 1 (-action panic=exit-failure)", false},
		{"panic=shutdown", 0, "vmm: the guest panicked (pvpanic); exit status 0 (-action panic=shutdown)", false},
		{"panic=none", 5, "vmm: the guest panicked (pvpanic); it runs on (-action panic=none)", true},
	} {
		t.Run("action "+tc.action, func(t *testing.T) {
			args := []string{"-kernel", guest, "-append", "pvpanic; exit 5"}
			if tc.action != "" {
				args = append(args, "-action", tc.action)
			}
			r := runVMM(t, args...)
			if r.status != tc.status || strings.TrimSpace(r.stderr) != tc.line {
				t.Errorf("status %d, stderr %q; want %d and %q", r.status, r.stderr, tc.status, tc.line)
			}
			if !strings.Contains(r.stdout, "guest: pvpanic events 3") {
				t.Errorf("stdout %q; want the supported events (3) read from port 0x505", r.stdout)
			}
			if got := strings.Contains(r.stdout, "pvpanic: still running"); got != tc.runsOn {
				t.Errorf("guest ran on after the panic: %v; want %v\n%s", got, tc.runsOn, r.stdout)
			}
		})
	}
	t.Run("action panic=pause", func(t *testing.T) {
		// Held, the guest never reaches its exit: vmm runs until told.
		cmd := exec.Command(vmmBinary(t), "run", "-kernel", guest, "-append", "pvpanic; loop 100000000000; exit 5", "-action", "panic=pause")
		p := startVM(t, cmd)
		waitConsole(t, p, "vmm: the guest panicked (pvpanic); paused (-action panic=pause)", time.Minute)
		cmd.Process.Signal(syscall.SIGTERM)
		vmEndedWith(t, p, 128+int(syscall.SIGTERM))
	})
}

// TestTripleFaultCrash: a guest that triple-faults with its IDT in place
// crashed (not Linux's reboot=t, which empties the IDT first, as the
// test guest's `triplefault` does: TestGuestReset): vmm says so on
// stderr and exits 1.
func TestTripleFaultCrash(t *testing.T) {
	needKVM(t)
	// 32-bit PVH entry at 0x100000: lidt [0x100100]; ud2. The IDT (2 KiB
	// of zeros at 0x200000) has no present gate: #UD, #NP, #DF, shutdown.
	code := []byte{0x0f, 0x01, 0x1d, 0x00, 0x01, 0x10, 0x00, 0x0f, 0x0b}
	img := make([]byte, 0x200)
	copy(img, code)
	binary.LittleEndian.PutUint16(img[0x100:], 0x7ff)
	binary.LittleEndian.PutUint32(img[0x102:], 0x200000)
	kernel := filepath.Join(t.TempDir(), "crash.elf")
	if err := os.WriteFile(kernel, pvhELF(0x100000, img), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runVMM(t, "-kernel", kernel, "-serial", "null")
	want := "vmm: vCPU 0: the guest triple-faulted at rip 0x100007 with its IDT in place: it crashed"
	if r.status != 1 || !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("status %d, stderr %q; want 1 and one line starting %q", r.status, r.stderr, want)
	}
}

// pvhELF is a minimal ELF64 with one PT_LOAD of img at addr and the Xen
// PVH entry note pointing at addr.
func pvhELF(addr uint32, img []byte) []byte {
	const ehsize, phsize = 64, 56
	note := make([]byte, 0, 20)
	note = binary.LittleEndian.AppendUint32(note, 4)  // namesz ("Xen\0")
	note = binary.LittleEndian.AppendUint32(note, 4)  // descsz
	note = binary.LittleEndian.AppendUint32(note, 18) // XEN_ELFNOTE_PHYS32_ENTRY
	note = append(note, "Xen\x00"...)
	note = binary.LittleEndian.AppendUint32(note, addr)
	noteOff := uint64(ehsize + 2*phsize)
	imgOff := uint64(0x1000)
	f := make([]byte, imgOff+uint64(len(img)))
	le := binary.LittleEndian
	copy(f, "\x7fELF\x02\x01\x01")
	le.PutUint16(f[16:], 2)  // ET_EXEC
	le.PutUint16(f[18:], 62) // EM_X86_64
	le.PutUint32(f[20:], 1)
	le.PutUint64(f[24:], uint64(addr))
	le.PutUint64(f[32:], ehsize) // phoff
	le.PutUint16(f[52:], ehsize)
	le.PutUint16(f[54:], phsize)
	le.PutUint16(f[56:], 2)
	ph := func(i int, typ uint32, off, vaddr, size uint64) {
		p := f[ehsize+i*phsize:]
		le.PutUint32(p[0:], typ)
		le.PutUint32(p[4:], 5) // R+X
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], vaddr)
		le.PutUint64(p[24:], vaddr)
		le.PutUint64(p[32:], size)
		le.PutUint64(p[40:], size)
		le.PutUint64(p[48:], 4)
	}
	ph(0, 1, imgOff, uint64(addr), uint64(len(img))) // PT_LOAD
	ph(1, 4, noteOff, 0, uint64(len(note)))          // PT_NOTE
	copy(f[noteOff:], note)
	copy(f[imgOff:], img)
	return f
}

// TestConsoleIntoAFile: `vmm run … >> log` and `(echo …; vmm run …) >
// log` add the guest's console after what the file holds, never over it.
func TestConsoleIntoAFile(t *testing.T) {
	needKVM(t)
	dir := t.TempDir()
	for _, appendMode := range []bool{true, false} {
		path := filepath.Join(dir, "log")
		if err := os.WriteFile(path, []byte("before\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		flags := os.O_WRONLY
		if appendMode {
			flags |= os.O_APPEND
		}
		f, err := os.OpenFile(path, flags, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(0, 2); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(vmmBinary(t), "run", "-kernel", guestELF(t), "-append", "echo into-the-file; exit 0")
		var diag strings.Builder
		cmd.Stdout, cmd.Stderr = f, &diag
		err = cmd.Run()
		f.Close()
		if err != nil {
			t.Fatalf("vmm: %v %s", err, diag.String())
		}
		b, _ := os.ReadFile(path)
		if !strings.HasPrefix(string(b), "before\nguest: hello\n") || !strings.Contains(string(b), "into-the-file") {
			t.Errorf("O_APPEND %v: file holds %q; want the earlier line, then the console", appendMode, b)
		}
	}
}

// TestEmulatingHostHints: on a host whose KVM emulates guest kernel mode
// (kvm_pvm), a VM that stops at an instruction KVM cannot emulate is
// told what to try, and a distribution kernel (a bzImage) gets one
// warning line before it starts its long or hopeless boot.
func TestEmulatingHostHints(t *testing.T) {
	needKVM(t)
	if _, err := os.Stat("/sys/module/kvm_pvm"); err != nil {
		t.Skip("this host's KVM runs guest kernel mode natively (no kvm_pvm)")
	}
	r := runVMM(t, "-kernel", guestELF(t), "-append", "unemulated")
	if r.status != 1 || !strings.Contains(r.stderr, "emulation failure") ||
		!strings.Contains(r.stderr, "this host's KVM emulates guest kernel mode (kvm_pvm)") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("status %d, stderr %q; want 1 and one line with the kvm_pvm hint", r.status, r.stderr)
	}
	bz := filepath.Join(repoRoot(), "build/debian/bzImage")
	if _, err := os.Stat(bz); err != nil {
		t.Logf("no %s (make kernels): the bzImage warning is not checked", bz)
		return
	}
	p := startVM(t, exec.Command(vmmBinary(t), "run", "-kernel", bz, "-serial", "null"))
	waitConsole(t, p, "vmm: warning: this host's KVM emulates guest kernel mode (kvm_pvm): a distribution kernel boots very slowly", time.Minute)
}

// TestLinuxPanic: the Linux test kernel (no ACPI, so the ISA pvpanic's
// QEMU0001 is out of its reach) with -device pvpanic-pci: its
// pvpanic-pci driver binds 1b36:0011, and when init exits the kernel's
// panic reaches vmm, which ends with 1 and says so, where the panic's
// reboot=t triple fault would otherwise end it with 0.
func TestLinuxPanic(t *testing.T) {
	needKVM(t)
	vmlinux, initrd := linuxKernel(t)
	r := runVMM(t, "-kernel", vmlinux, "-initrd", initrd, "-m", "128M", "-cpu", linuxCPU,
		"-device", "pvpanic-pci", "-append", linuxCmdline+" vmm.cmd=panic")
	want := "vmm: the guest panicked (pvpanic); exit status 1 (-action panic=exit-failure)"
	if r.status != 1 || strings.TrimSpace(r.stderr) != want {
		t.Errorf("status %d, stderr %q; want 1 and %q", r.status, r.stderr, want)
	}
	if !strings.Contains(r.stdout, "vmm-init: panic: init exits") || !strings.Contains(r.stdout, "Attempted to kill init") {
		t.Errorf("console lacks the init's last line and the kernel's panic\n%s", r.stdout)
	}
}
