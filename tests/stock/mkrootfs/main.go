// Command mkrootfs writes the shell initramfs of tests/stock: an
// uncompressed newc cpio holding a busybox userland (applets as symlinks),
// the /init script (init.sh), /sbin/shutdown and /sbin/vmm-off (also as
// poweroff, reboot and halt), acpid's power-button handler
// (/etc/acpid.conf, /etc/acpi/power: acpi-power.sh), optionally
// kernel modules for the init to load in order, and optionally qemu-ga with
// the shared libraries and dynamic loader it needs.
//
//	go run ./tests/stock/mkrootfs -o shell.cpio -busybox bin/busybox \
//	    -modules DIR -module-list virtio_ring,virtio,virtio_pci_legacy_dev?,... \
//	    -builtin modules.builtin -qga usr/sbin/qemu-ga
//
// A module is looked for as DIR/NAME.ko, .ko.xz or .ko.zst (decompressed
// with the xz or zstd command). A missing module is an error unless the
// -builtin file (the kernel's modules.builtin) names it, or it ends in "?"
// (optional, e.g. virtio_pci_legacy_dev, which not every kernel ships).
//
// Libraries are found by walking DT_NEEDED from -qga through the -libdirs
// (the host's by default: on a Debian host they are the guest's too); each
// is stored under /lib/x86_64-linux-gnu/ and the loader at its PT_INTERP
// path.
//
// Uncompressed on purpose: the kernel's decompressors run at CPL0, which
// the hosts we build on emulate instruction by instruction.
package main

import (
	"bytes"
	"debug/elf"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"vmm/tests/initramfs"
)

//go:embed init.sh
var initScript []byte

//go:embed shutdown.sh
var shutdownScript []byte

//go:embed vmm-off.sh
var offScript []byte

// acpid's power-button handler and the action file that names it: busybox
// acpid maps KEY_POWER to "button/power PWRF …", and the action file maps
// PWRF to /etc/acpi/power.
//
//go:embed acpi-power.sh
var acpiPowerScript []byte

const acpidConf = "# busybox acpid: event key, handler in /etc/acpi\nPWRF power\n"

const defaultLibDirs = "/lib/x86_64-linux-gnu,/usr/lib/x86_64-linux-gnu,/lib64,/usr/lib64,/lib,/usr/lib"

// guestLibDir is where the libraries go in the image: a directory the
// Debian loader searches without an ld.so.cache.
const guestLibDir = "lib/x86_64-linux-gnu"

func main() {
	out := flag.String("o", "", "output `file` (required)")
	busybox := flag.String("busybox", "", "static busybox `binary` (required)")
	modDir := flag.String("modules", "", "`directory` holding the modules of -module-list")
	modList := flag.String("module-list", "", "comma-separated module `names` in load order; NAME? is optional")
	builtin := flag.String("builtin", "", "the kernel's modules.builtin `file`: listed modules are skipped")
	qga := flag.String("qga", "", "qemu-ga `binary` to include (with its libraries)")
	libDirs := flag.String("libdirs", defaultLibDirs, "comma-separated `directories` to find qemu-ga's libraries in")
	flag.Parse()
	if flag.NArg() != 0 || *out == "" || *busybox == "" || (*modList != "" && *modDir == "") {
		flag.Usage()
		os.Exit(2)
	}
	var img image
	if err := img.build(*busybox, *modDir, *modList, *builtin, *qga, strings.Split(*libDirs, ",")); err != nil {
		log.Fatalf("mkrootfs: %v", err)
	}
	if err := img.write(*out); err != nil {
		log.Fatalf("mkrootfs: %s: %v", *out, err)
	}
	log.Printf("mkrootfs: wrote %s (%d entries)", *out, len(img.recs))
}

// image is the archive being assembled: records in the order the kernel
// must create them (every directory before what it holds).
type image struct {
	recs []cpio.Record
	have map[string]bool
}

func (img *image) add(r cpio.Record) {
	if img.have == nil {
		img.have = map[string]bool{}
	}
	if img.have[r.Name] {
		return
	}
	if dir := path.Dir(r.Name); dir != "." && !img.have[dir] {
		img.add(cpio.Directory(dir, 0o755))
	}
	img.have[r.Name] = true
	img.recs = append(img.recs, r)
}

func (img *image) file(name string, data []byte, perm uint64) {
	img.add(cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm}))
}

func (img *image) build(busybox, modDir, modList, builtin, qga string, libDirs []string) error {
	for _, d := range []string{"dev", "proc", "sys", "run/qemu-ga", "tmp", "root", "etc", "lib/modules", "bin", "sbin", "usr/bin", "usr/sbin"} {
		img.add(cpio.Directory(d, 0o755))
	}
	// A FIFO nobody writes: the init's `read -t` on it is a sleep
	// without a fork.
	img.add(cpio.Record{Info: cpio.Info{Name: "run/delay", Mode: cpio.S_IFIFO | 0o600}})
	// The kernel opens /dev/console for init before devtmpfs is mounted.
	img.add(cpio.CharDev("dev/console", 0o600, 5, 1))
	img.file("init", initScript, 0o755)
	img.file("sbin/shutdown", shutdownScript, 0o755)
	for _, name := range []string{"vmm-off", "poweroff", "reboot", "halt"} {
		img.file("sbin/"+name, offScript, 0o755)
	}
	img.file("etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	img.file("etc/group", []byte("root:x:0:\n"), 0o644)
	img.file("etc/acpid.conf", []byte(acpidConf), 0o644)
	img.file("etc/acpi/power", acpiPowerScript, 0o755)

	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	img.file("bin/busybox", bb, 0o755)
	list, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "bin/busybox" || img.have[applet] || strings.HasPrefix(applet, "linuxrc") {
			continue // our own /sbin/shutdown etc. win
		}
		img.add(cpio.Symlink(applet, "/bin/busybox"))
	}

	var loaded []string
	if modList != "" {
		var builtins string
		if builtin != "" {
			b, err := os.ReadFile(builtin)
			if err != nil {
				return err
			}
			builtins = string(b)
		}
		for _, name := range strings.Split(modList, ",") {
			name, optional := strings.CutSuffix(name, "?")
			data, err := initramfs.ReadModule(modDir, name)
			switch {
			case err == nil:
				img.file("lib/modules/"+name+".ko", data, 0o644)
				loaded = append(loaded, name)
			case os.IsNotExist(err) && strings.Contains(builtins, "/"+name+".ko"):
				log.Printf("mkrootfs: module %s is built in", name)
			case os.IsNotExist(err) && optional:
				log.Printf("mkrootfs: optional module %s not shipped", name)
			default:
				return err
			}
		}
	}
	img.file("etc/vmm-modules", []byte(strings.Join(append(loaded, ""), "\n")), 0o644)

	if qga != "" {
		if err := img.addELF(qga, "usr/sbin/qemu-ga", libDirs); err != nil {
			return err
		}
	}
	return nil
}

// addELF stores the dynamic executable src at dst, its PT_INTERP loader at
// the path it names, and every library it needs, transitively.
func (img *image) addELF(src, dst string, libDirs []string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	img.file(dst, data, 0o755)
	interp := ""
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("%s: PT_INTERP: %w", src, err)
		}
		interp = strings.TrimRight(string(b), "\x00")
		loader, err := os.ReadFile(interp)
		if err != nil {
			return fmt.Errorf("%s's loader: %w", src, err)
		}
		img.file(strings.TrimPrefix(interp, "/"), loader, 0o755)
	}
	// Breadth-first over DT_NEEDED.
	queue, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	for len(queue) > 0 {
		lib := queue[0]
		queue = queue[1:]
		dst := guestLibDir + "/" + lib
		if img.have[dst] || lib == path.Base(interp) { // libc names the loader too
			continue
		}
		found := ""
		for _, d := range libDirs {
			if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
				found = filepath.Join(d, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, which is in none of %s", src, lib, strings.Join(libDirs, ", "))
		}
		b, err := os.ReadFile(found) // follows the soname symlink
		if err != nil {
			return err
		}
		img.file(dst, b, 0o755)
		lf, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", found, err)
		}
		more, err := lf.ImportedLibraries()
		lf.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", found, err)
		}
		queue = append(queue, more...)
		log.Printf("mkrootfs: %s <- %s", dst, found)
	}
	return nil
}

// write stores the archive at out.
func (img *image) write(out string) error { return initramfs.Write(out, img.recs) }
