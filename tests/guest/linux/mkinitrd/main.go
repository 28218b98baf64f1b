// Command mkinitrd builds the test kernel's initramfs: it builds the Go
// init (tests/guest/linux/init, CGO_ENABLED=0, static) and writes an
// uncompressed newc cpio holding /init, /dev, /proc, /sys and /dev/console
// (char 5,1, which the kernel opens as init's stdin/stdout/stderr).
//
//	go run ./tests/guest/linux/mkinitrd -o build/linux/initrd.cpio
//
// Uncompressed on purpose: the kernel's decompressors run at CPL0, which
// the hosts we build on emulate instruction by instruction.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/u-root/u-root/pkg/cpio"
)

const initPkg = "vmm/tests/guest/linux/init"

func main() {
	out := flag.String("o", "build/linux/initrd.cpio", "output `file`")
	goCmd := flag.String("go", "go", "the go `command` that builds the init")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := mkinitrd(*out, *goCmd); err != nil {
		log.Fatalf("mkinitrd: %v", err)
	}
}

func mkinitrd(out, goCmd string) error {
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
		cpio.StaticRecord(initBytes, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	for i := range records {
		records[i].Ino = uint64(i + 1) // distinct inodes: no hard links
		records[i].NLink = 1
	}
	cpio.MakeAllReproducible(records)

	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".initrd-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriter(f)
	w := cpio.Newc.Writer(bw)
	if err := cpio.WriteRecords(w, records); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", out, err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", out, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", out, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	return os.Rename(f.Name(), out)
}
