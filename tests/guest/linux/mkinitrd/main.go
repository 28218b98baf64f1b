// Command mkinitrd builds the test kernel's initramfs: it builds the Go
// init (tests/guest/linux/init, CGO_ENABLED=0, static) and writes an
// uncompressed newc cpio holding /init, /dev, /proc, /sys, /dev/console
// (char 5,1, which the kernel opens as init's stdin/stdout/stderr) and
// /dev/null (char 1,3). Without a console (console=hvc0 alone, before
// virtio_console is loaded) the kernel starts init with fds 0-2 closed,
// and the Go runtime then opens /dev/null for them before main runs,
// or dies ("cannot open standard fds") and the kernel panics.
//
//	go run ./tests/guest/linux/mkinitrd -o build/linux/initrd.cpio
//
// With -modules DIR -module-list a,b,c it also puts DIR's a.ko, b.ko and
// c.ko (or a.ko.xz, a.ko.zst, decompressed with the xz or zstd command)
// in /modules/, for the init to load in that order (vmm.modules=a,b,c).
//
// Uncompressed on purpose: the kernel's decompressors run at CPL0, which
// the hosts we build on emulate instruction by instruction.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"vmm/tests/initramfs"
)

const initPkg = "vmm/tests/guest/linux/init"

func main() {
	out := flag.String("o", "build/linux/initrd.cpio", "output `file`")
	goCmd := flag.String("go", "go", "the go `command` that builds the init")
	modDir := flag.String("modules", "", "`directory` holding the kernel modules of -module-list")
	modList := flag.String("module-list", "", "comma-separated module `names` (no extension) to put in /modules/")
	flag.Parse()
	if flag.NArg() != 0 || (*modDir == "") != (*modList == "") {
		flag.Usage()
		os.Exit(2)
	}
	var names []string
	if *modList != "" {
		names = strings.Split(*modList, ",")
	}
	if err := mkinitrd(*out, *goCmd, *modDir, names); err != nil {
		log.Fatalf("mkinitrd: %v", err)
	}
}

func mkinitrd(out, goCmd, modDir string, modules []string) error {
	tmp, err := os.MkdirTemp("", "mkinitrd")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// -s -w: a smaller /init is less for the (emulated) kernel to copy.
	bin := filepath.Join(tmp, "init")
	build := exec.Command(goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, initPkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", initPkg, err)
	}
	initBytes, err := os.ReadFile(bin)
	if err != nil {
		return err
	}

	records := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.CharDev("dev/null", 0o666, 1, 3),
		cpio.StaticRecord(initBytes, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	if len(modules) > 0 {
		records = append(records, cpio.Directory("modules", 0o755))
		for _, m := range modules {
			b, err := initramfs.ReadModule(modDir, m)
			if err != nil {
				return err
			}
			records = append(records, cpio.StaticRecord(b, cpio.Info{Name: "modules/" + m + ".ko", Mode: cpio.S_IFREG | 0o644}))
		}
	}
	return initramfs.Write(out, records)
}
